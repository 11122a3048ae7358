# Round 12, call 1: the tokenizer's threads (encode_batch over 512 guard prompts with 64, 32, 16 and 8 prompts a
# thread); then end to end, alternating new (attended slots from bounds) and old (458169f), two runs each; the
# float32 greedy check on new.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 - <<'PY'
import statistics, sys, time
sys.path.insert(0, "benchmarks")
from generation_throughput import guard_items
from guard_eval.generation.hf import encode_batch
from guard_eval.tiny import build_tokenizer
tok = build_tokenizer()
texts = guard_items(512, tok)
for per_thread in (64, 32, 16, 8):
    times = []
    for _ in range(7):
        start = time.perf_counter()
        encode_batch(tok, texts, False, per_thread=per_thread)
        times.append(1e3 * (time.perf_counter() - start))
    print(f"encode_batch 512 prompts, {per_thread} a thread: {statistics.median(times):.1f} ms (min {min(times):.1f})")
PY
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }
gen() {
  timeout 90 python3 $(root $1)/benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --output-len 256 --batches 2 --backends fast --json $OUT/gen-$1-$2.json > /tmp/gen-$1-$2.log 2>&1
  grep "^| fast" /tmp/gen-$1-$2.log | sed "s/^/$1 $2 /" | cut -c1-200
}
for round in 1 2; do for which in new old; do gen $which $round; done; done
timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
  --output-len 64 --backends fast --check 16 --json $OUT/genfp32.json > /tmp/genfp32.log 2>&1 || tail -20 /tmp/genfp32.log
python3 -c "import json; print(json.load(open('$OUT/genfp32.json'))['greedy_check']['fast'])"
