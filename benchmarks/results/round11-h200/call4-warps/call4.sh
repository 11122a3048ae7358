# Round 11, call 4: the attention probe with the new token's case fixed (the marked slots end before the new one, as
# in the loop); then end to end, alternating: new (4 warps for the fused attention), "mid" (the same tree with 2
# warps) and old (2ef4ffa); the float32 greedy check on new.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
timeout 120 python3 benchmarks/fused_attention_probe.py --rows 256 64 \
  --old-kernels .gpu/old/guard_eval/generation/_decode_attention_kernels.py --json $OUT/attention-probe.json 2>&1 \
  | grep -v Warn | cut -c1-150
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }
gen() {
  timeout 90 python3 $(root $1)/benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --output-len 256 --batches 2 --backends fast --json $OUT/gen-$1-$2.json > /tmp/gen-$1-$2.log 2>&1
  grep "^| fast" /tmp/gen-$1-$2.log | sed "s/^/$1 $2 /" | cut -c1-200
}
for round in 1 2; do for which in new mid old; do gen $which $round; done; done
timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
python3 -c "import json; print(json.load(open('$OUT/genfp32.json'))['greedy_check']['fast'])"
