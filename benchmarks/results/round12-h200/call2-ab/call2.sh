# Round 12, call 2: new (q/k/v of a prefill as their own GEMMs, the tokenizer without offsets on 16 threads) against
# old (458169f), alternating: the 256-row prefill and decode step (profile_decode.py), then end to end at 64 and 256
# rows; the float32 greedy check on new.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }
for round in 1 2; do for which in new old; do
  log=/tmp/profile-$which-$round.log; [ $round = 1 ] && log=$OUT/profile-$which.log  # (a call returns 8 files)
  timeout 100 python3 $(root $which)/benchmarks/profile_decode.py --rows 256 --kernels 12 > $log 2>&1
  grep -E "ms/step|kernel time in" $log | sed "s/^/$which $round /" | cut -c1-200
done; done
gen() {
  timeout 90 python3 $(root $1)/benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --output-len 256 --batches 2 --backends fast --json $OUT/gen-$1-$2.json > /tmp/gen-$1-$2.log 2>&1
  grep "^| fast" /tmp/gen-$1-$2.log | sed "s/^/$1 $2 /" | cut -c1-200
}
for round in 1 2; do for which in new old; do gen $which $round; done; done
timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
python3 -c "import json; print(json.load(open('$OUT/genfp32.json'))['greedy_check']['fast'])"
