# Round 12, call 6: the final tree against lm-eval 0.4.13's HF backend at 64 rows, same prompts and model (goal 1's
# ">= 8x lm-eval at 64 rows"), and the fast loop at 256 rows in the same run.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl .whl/lm/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
timeout 200 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
  --batches 2 --backends fast lm-eval --baseline-batch-sizes 64 --json $OUT/gen-lmeval.json > $OUT/gen-lmeval.log 2>&1
grep "^|" $OUT/gen-lmeval.log
