set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>/dev/null
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GUARD_DATA_DIR=$PWD/.gpu-data
[ -f /tmp/llama-1b/config.json ] || python3 -c "from guard_eval.tiny import build_tiny_model as b
b('/tmp/llama-1b', hidden_size=2048, num_layers=16, intermediate_size=8192, num_heads=32)"
args="sft --config configs/sft.yaml --set model=/tmp/llama-1b --set overwrite=true --set lora=false --set merge=false --set max_steps=6 --set logging_steps=1 --set max_length=1024 --set per_device_train_batch_size=16 --set gradient_accumulation_steps=2 --set data=guardreasoner:1B:aegis,harmbench_response --set padding_free=true --set attn_implementation=flex_attention"
TORCH_LOGS=recompiles timeout 170 python3 -m guard_train.cli $args --set output_dir=/tmp/d1 > $OUT/diag1.log 2>&1; echo rc1 $?
timeout 200 python3 -c "
import sys, torch._dynamo.config as c
c.cache_size_limit = c.recompile_limit = 256; c.accumulated_cache_size_limit = c.accumulated_recompile_limit = 4096
from guard_train.cli import main; sys.argv[0]='guard-train'; sys.exit(main(sys.argv[1:]))" $args --set output_dir=/tmp/d2 > $OUT/diag2.log 2>&1; echo rc2 $?
python3 -c "import json;m=json.load(open('/tmp/d2/guard_bench.json'))['metrics'];print({k:m.get(k) for k in ('train_runtime_s','gpu_peak_allocated_mib')}, [h.get('num_tokens') for h in m['log_history']][-2:])" 
