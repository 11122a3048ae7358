# Round 12, call 5: two more alternating end-to-end runs of new (the final tree) and old (458169f), after call 4.
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }
for round in 3 4; do for w in new old; do
  timeout 90 python3 $(root $w)/benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --output-len 256 --batches 2 --backends fast --json $OUT/gen-$w-$round.json > /tmp/g.log 2>&1
  grep "^| fast" /tmp/g.log | sed "s/^/$w $round /" | cut -c1-120
done; done
