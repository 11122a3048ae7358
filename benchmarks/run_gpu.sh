#!/usr/bin/env bash
# The GPU measurements behind docs/performance.md and docs/experiments.md, as run on one H100 (torch 2.11,
# transformers 5.17 preinstalled; the other packages carried as wheels in .whl-train/, the shared data copied to
# .gpu-data/). Usage: benchmarks/run_gpu.sh throughput|experiment|fsdp|padding-free|profile|round6|round7|round8|round9 OUT_DIR
#   throughput  generation tokens/s: our HF backend vs lm-eval's HF backend vs plain generate (issue 8)
#   experiment  configs/experiments/gpu-0.5b.yaml end to end; re-run to resume after the last finished stage (issue 6)
#   fsdp        reasoning SFT and DPO of a Llama-3.2-1B-shaped model through `accelerate launch` + FSDP (issue 9)
#   padding-free  SFT of that model on one GPU, padded vs padding-free (SDPA, flex attention, + Liger) (issue 15)
#   profile     where an SFT step of that model goes, eager vs torch_compile (benchmarks/profile_train.py) (issue 15)
#   round6      fused q/k/v + gate/up projections on/off vs lm-eval (bf16, fp32 equality), then DPO and SFT with
#               pad_to_multiple_of=64 against the plain run before and after it (issue 15)
#   round7      the fast loop's own decode-layer forward on/off vs lm-eval, fp32 equality, kernel tables (issue 15)
#   round8      decode attention sweep, fast-loop throughput, the whole suite through guard-eval run (issue 15)
#   round9      the decode attention without its per-block branch: sweep, throughput vs lm-eval, fp32, profile
set -euo pipefail
what=$1 out=$2
mkdir -p "$out"
wheels=${WHEELS:-.whl-train}
if [ -d "$wheels" ] && [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$wheels"/*.whl \
    $(ls "$wheels"/lm/*.whl 2>/dev/null)  # lm/: lm-eval and its dependencies, for the decode comparisons
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
profile)  # STEPS=10; extra --set pairs in SETS (e.g. "use_liger_kernel=true")
  llama_1b
  for variant in ${VARIANTS:-eager compile}; do  # eager|compile, -pad64 (pad_to_multiple_of=64), -nocudnn
    compile=$([[ $variant = compile* ]] && echo true || echo false)
    extra=""
    if [[ $variant = *pad64* ]]; then extra="--set pad_to_multiple_of=64"; fi
    if [[ $variant = *nocudnn* ]]; then extra="$extra --no-cudnn-attention"; fi
    python3 benchmarks/profile_train.py --config configs/sft.yaml --out "$out/profile-$variant" --skip-steps 4 \
      --profile-steps "${PROFILE_STEPS:-2}" $extra \
      --set model=/tmp/llama-1b --set lora=false --set max_steps="${STEPS:-10}" --set max_length=1024 \
      --set per_device_train_batch_size=4 --set gradient_accumulation_steps=8 --set logging_steps=1 \
      --set data=guardreasoner:1B:aegis,harmbench_response --set data_dir="$GUARD_DATA_DIR" --set overwrite=true \
      --set torch_compile=$compile $(for s in ${SETS:-}; do echo --set "$s"; done) 2>&1 | tail -40 > "$out/profile-$variant.log" || true
  done
  ;;
round6)
  llama_1b
  t0=$(date +%s)
  timeout 220 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
    --batches 2 --backends fast fast-noproj lm-eval --baseline-batch-sizes 64 --json "$out/gen-proj.json" > "$out/gen-proj.log" 2>&1
  timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
    --output-len 64 --backends fast fast-noproj --check 16 --json "$out/genfp32-proj.json" > "$out/genfp32-proj.log" 2>&1
  for what in dpo sft; do  # seed=0 is the plain run again, after the padded one (first runs pay warm-ups)
    timeout $((t0 + 545 - $(date +%s))) python3 benchmarks/multi_gpu.py $what --model /tmp/llama-1b --processes 1 \
      --accelerate-config= --sft-data guardreasoner:1B:aegis,harmbench_response --data-dir "$GUARD_DATA_DIR" \
      --max-steps 16 --per-device-batch 4 --global-batch 32 --variant pad_to_multiple_of=64 --variant seed=0 \
      --deadline $((t0 + 470)) --workdir /tmp/$what --json "$out/$what-pad64.json" > "$out/$what-pad64.log" 2>&1 || true
  done
  ;;
round7)  # the loop's own decode-layer forward on/off vs lm-eval (bf16, fp32 equality), then the kernels of a step
  timeout 240 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
    --batches 2 --backends fast fast-nolayers lm-eval --baseline-batch-sizes 64 --json "$out/gen-layers.json" > "$out/gen-layers.log" 2>&1
  timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
    --output-len 64 --backends fast fast-nolayers --check 16 --json "$out/genfp32-layers.json" > "$out/genfp32-layers.log" 2>&1
  timeout 100 python3 benchmarks/profile_decode.py --rows 64 256 --kernels 30 > "$out/profile-decode.log" 2>&1
  timeout 100 python3 benchmarks/profile_decode.py --rows 64 256 --kernels 30 --no-fused-layers > "$out/profile-decode-nolayers.log" 2>&1
  ;;
round8)  # the decode attention sweep; fast-loop throughput (threaded tokenizing); the whole suite (needs the test sets)
  timeout 120 python3 benchmarks/decode_attention_bench.py --rows 64 256 --generated 128 320 --blocks 64 128 \
    --warps 2 4 --stages 2 3 --json "$out/attention.json" > "$out/attention.log" 2>&1
  timeout 150 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
    --batches 2 --backends fast --json "$out/gen.json" > "$out/gen.log" 2>&1
  llama_1b
  timeout 540 python3 benchmarks/suite_time.py --model /tmp/llama-1b --data-dir "$GUARD_DATA_DIR" --output /tmp/suite8 \
    --json "$out/suite-1b-1024.json" -- --no-progress --benchmarks guardreasoner --max-new-tokens 1024 --batch-size 512 \
    --dtype bfloat16 > "$out/suite.log" 2>&1
  ;;
round9)  # the decode attention without its per-block branch: kernel sweep, throughput vs lm-eval, fp32 equality, profile
  timeout 90 python3 benchmarks/decode_attention_bench.py --rows 64 256 --generated 128 320 --blocks 128 \
    --warps 2 4 --stages 2 --json "$out/attention.json" > "$out/attention.log" 2>&1
  timeout 240 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
    --batches 2 --backends fast lm-eval --baseline-batch-sizes 64 --json "$out/gen.json" > "$out/gen.log" 2>&1
  timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --dtype float32 --batch-sizes 16 \
    --output-len 64 --backends fast --check 16 --json "$out/genfp32.json" > "$out/genfp32.log" 2>&1
  timeout 100 python3 benchmarks/profile_decode.py --rows 64 256 --kernels 30 > "$out/profile-decode.log" 2>&1
  ;;
*) echo "unknown: $what" >&2; exit 2 ;;
esac
