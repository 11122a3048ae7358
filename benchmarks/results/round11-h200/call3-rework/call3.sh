# Round 11, call 3: the fused attention reworked (no loop bound or slot mask from the device: `valid` marks only
# written slots; the new token merged after the loop; cos/sin rows gathered once a step). Probe of the attention
# alone against the previous design (rotary_store + attention, from .gpu/old); then new vs old end to end,
# alternating; the decode-step profile and the float32 greedy check on new.
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
gen new 1; gen old 1
timeout 80 python3 benchmarks/profile_decode.py --rows 256 --kernels 30 > $OUT/profile-decode.log 2>&1
grep "rows=\|eager step" $OUT/profile-decode.log | cut -c1-200
gen new 2; gen old 2
timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
python3 -c "import json; print(json.load(open('$OUT/genfp32.json'))['greedy_check']['fast'])"
