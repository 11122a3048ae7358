# Round 10, call 2: the working tree ("new": packed prefill, finish checks read a step late, batches finished after
# the next is queued, faster padding) against HEAD 4e33230 ("old", unpacked into .gpu/old) in one device session,
# alternating; then the probe and the float32 greedy check on the new code.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
for round in 1 2; do
  for which in new old; do
    script=benchmarks/generation_throughput.py
    [ $which = old ] && script=.gpu/old/benchmarks/generation_throughput.py  # puts .gpu/old first on sys.path
    timeout 110 python3 $script --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 --batches 2 \
      --backends fast --json $OUT/gen-$which-$round.json > /tmp/gen-$which-$round.log 2>&1
    grep "^| fast\|^fast:" /tmp/gen-$which-$round.log | sed "s/^/$which $round /" | cut -c1-250
  done
done
timeout 200 python3 benchmarks/prefill_probe.py --json $OUT/probe.json > /tmp/probe.log 2>&1 || tail -20 /tmp/probe.log
timeout 120 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
grep -i "check\|equal\|identical" /tmp/genfp32.log | head -5
