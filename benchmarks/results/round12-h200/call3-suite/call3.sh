# Round 12, call 3: the whole suite (11,749 items, 1,024-token budget, batch 512, random 1B shape) through
# suite_time.py, new then old (458169f), in one machine session.
set -u
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p /tmp/data && tar -C /tmp/data -xzf .gpu/p3/data.tgz
[ -d /tmp/llama-1b ] || python3 -c "from guard_eval.tiny import build_tiny_model as b; b('/tmp/llama-1b', hidden_size=2048, num_layers=16, intermediate_size=8192, num_heads=32)"
root() { if [ $1 = new ]; then echo .; else echo .gpu/$1; fi; }
for which in new old; do
  timeout 280 python3 $(root $which)/benchmarks/suite_time.py --model /tmp/llama-1b --data-dir /tmp/data \
    --output /tmp/suite-$which --json $OUT/suite-$which.json -- --no-progress --backend-option continuous=false \
    --benchmarks guardreasoner --max-new-tokens 1024 --batch-size 512 --dtype bfloat16 > $OUT/suite-$which.log 2>&1
  python3 -c "import json; d = json.load(open('$OUT/suite-$which.json')); print('$which', {k: d[k] for k in ('total_s', 'prefill_s', 'decode_s', 'other_s', 'new_tokens')})"
done
