#!/usr/bin/env bash
# The GPU measurements behind docs/performance.md and docs/experiments.md, as run on one H100 (torch 2.11,
# transformers 5.17 preinstalled; the other packages carried as wheels in .whl-train/, the shared data copied to
# .gpu-data/). Usage: benchmarks/run_gpu.sh throughput|experiment|fsdp|padding-free OUT_DIR
#   throughput  generation tokens/s: our HF backend vs lm-eval's HF backend vs plain generate (issue 8)
#   experiment  configs/experiments/gpu-0.5b.yaml end to end; re-run to resume after the last finished stage (issue 6)
#   fsdp        reasoning SFT and DPO of a Llama-3.2-1B-shaped model through `accelerate launch` + FSDP (issue 9)
#   padding-free  SFT of that model on one GPU, padded vs padding-free (SDPA, flex attention, + Liger) (issue 15)
set -euo pipefail
what=$1 out=$2
mkdir -p "$out"
wheels=${WHEELS:-.whl-train}
if [ -d "$wheels" ] && [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$wheels"/*.whl
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null  # guard_train's built-ins are entry points
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GUARD_DATA_DIR=${GUARD_DATA_DIR:-$PWD/.gpu-data} NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

llama_1b() {
  [ -f /tmp/llama-1b/config.json ] || python3 -c "from guard_eval.tiny import build_tiny_model as b
b('/tmp/llama-1b', hidden_size=2048, num_layers=16, intermediate_size=8192, num_heads=32)"
}

case $what in
throughput)
  python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 16 64 128 256 --output-len 256 \
    --backends fast lm-eval generate --baseline-batch-sizes 16 64 128 --check 16 \
    --json "$out/h100-llama-3.2-1b.json" 2>&1 | tee "$out/throughput-1b.log"
  python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --num-samples 4 \
    --output-len 256 --backends fast --json "$out/h100-llama-3.2-1b-k4.json" 2>&1 | tee "$out/throughput-1b-k4.log"
  python3 benchmarks/generation_throughput.py --shape tiny --batch-sizes 16 64 --output-len 256 \
    --backends fast lm-eval generate --json "$out/h100-tiny.json" 2>&1 | tee "$out/throughput-tiny.log"
  ;;
experiment)
  python3 -m guard_train.cli experiment configs/experiments/gpu-0.5b.yaml 2>&1 | tee -a "$out/experiment.log"
  cp -r runs/gpu-0.5b/report "$out/" 2>/dev/null || true
  (cd runs/gpu-0.5b && find . -name stage.json -o -name guard_bench.json -o -name results.json | tar czf "$out/stages.tgz" -T -)
  ;;
fsdp)
  llama_1b
  launch="accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes 1 -m guard_train.cli"
  common="--set overwrite=true --set lora=false --set merge=false --set max_steps=20 --set logging_steps=5 --set max_length=1024"
  $launch sft --config configs/sft.yaml $common --set model=/tmp/llama-1b --set output_dir=/tmp/fsdp-sft \
    --set data=guardreasoner:1B:aegis,harmbench_response 2>&1 | tee "$out/fsdp-sft.log"
  cp /tmp/fsdp-sft/guard_bench.json "$out/fsdp-sft.json"
  pairs=$(find runs -name pairs.jsonl | head -1)
  if [ -n "$pairs" ]; then
    $launch dpo --config configs/dpo.yaml $common --set model=/tmp/fsdp-sft --set output_dir=/tmp/fsdp-dpo \
      --set data=$pairs 2>&1 | tee "$out/fsdp-dpo.log"
    cp /tmp/fsdp-dpo/guard_bench.json "$out/fsdp-dpo.json"
  fi
  ;;
padding-free)  # BATCHES="4 16" STEPS=24; the first, throwaway run compiles flex attention and Liger's kernels
  llama_1b
  flex=padding_free=true,attn_implementation=flex_attention
  python3 benchmarks/multi_gpu.py sft --model /tmp/llama-1b --processes 1 --accelerate-config= --max-steps 2 \
    --sft-data guardreasoner:1B:aegis,harmbench_response --data-dir "$GUARD_DATA_DIR" --workdir /tmp/pf-warm-up \
    --per-device-batch 4 --variant $flex,use_liger_kernel=true > "$out/warm-up.log" 2>&1 || true
  for batch in ${BATCHES:-4 16}; do
    python3 benchmarks/multi_gpu.py sft --model /tmp/llama-1b --processes 1 --accelerate-config= \
      --sft-data guardreasoner:1B:aegis,harmbench_response --data-dir "$GUARD_DATA_DIR" --max-length 1024 \
      --global-batch 32 --per-device-batch "$batch" --max-steps "${STEPS:-24}" --workdir "/tmp/pf-$batch" \
      --variant padding_free=true --variant $flex --variant $flex,use_liger_kernel=true \
      --json "$out/train-padding-free-b$batch.json" 2>&1 | tee "$out/train-padding-free-b$batch.log"
  done
  ;;
*) echo "unknown: $what" >&2; exit 2 ;;
esac
