# Round 11, call 1: the working tree ("new": rotary + KV write + attention in one kernel, rotary tables, the step's
# bookkeeping in one kernel) against the session's start 2ef4ffa (.gpu/old) and the tree with the fused attention
# only, 11cd3b8 (.gpu/mid), alternating in one device session; the float32 greedy check on new; the decode-step
# profile of new and old at 256 rows.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }  # their scripts put their own tree first on sys.path
gen() {
  timeout 90 python3 $(root $1)/benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --output-len 256 --batches 2 --backends fast --json $OUT/gen-$1-$2.json > /tmp/gen-$1-$2.log 2>&1
  grep "^| fast" /tmp/gen-$1-$2.log | sed "s/^/$1 $2 /" | cut -c1-200
}
for which in new old mid; do gen $which 1; done
timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
grep -i "identical" /tmp/genfp32.log | head -3 | cut -c1-300
for which in new old; do
  timeout 80 python3 $(root $which)/benchmarks/profile_decode.py --rows 256 --kernels 30 > /tmp/profile-$which.log 2>&1
  grep "rows=\|eager step" /tmp/profile-$which.log | sed "s/^/$which /" | cut -c1-200
  cat /tmp/profile-$which.log >> $OUT/profile-decode.log
done
for which in new old mid; do gen $which 2; done
