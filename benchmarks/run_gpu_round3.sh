#!/usr/bin/env bash
# Round 3 GPU measurements (issues 15 and 16) in ONE call of at most ~8 minutes on a 2-GPU machine (2 x H100 80GB,
# torch 2.11 + CUDA 13, transformers 5.17 preinstalled). Carry `.whl` (liger-kernel 0.8.5, trl 1.16.0, datasets 5.2.0,
# dill, multiprocess) and `.gpu-data` (a slice of the shared data: guardreasoner/benchmark/0_0,0_1,0_3,0_6 and
# guardreasoner/test/1B/{AegisSafetyTest,HarmBenchResponse}); without .gpu-data the demo sets are used instead.
#
#   benchmarks/run_gpu_round3.sh "$OUT"              on the GPU machine
#   benchmarks/run_gpu_round3.sh --cpu-smoke /tmp/r3 on a CPU machine: the same steps with the tiny model (tests this script)
#
# Parts, each guarded (a failure prints its log tail and the next part runs), each cut to what is left of the budget:
#   1 gen       generation tok/s: fast (Liger fused kernels) vs fast-unfused at 64 and 256 rows, plain generate at 64,
#               1B shape, 256 forced tokens, bf16; % of the bandwidth bound with KV; bf16 greedy agreement (16 seqs)
#   2 genfp32   fp32 greedy equality of fast+Liger (and unfused) with generate on 16 sequences x 64 tokens
#   3 model     a 1B-shaped checkpoint (bf16) for guard-eval and guard-train
#   4 eval      guard-eval run on 1 vs 2 GPUs (accelerate launch): samples/s, efficiency, identical merged results;
#               a rank SIGKILLed mid-run, then the run repeated: resumes without losing or duplicating samples
#   5 sft       FSDP full SFT of the 1B shape on 1 vs 2 GPUs at global batch 32 (4 x 8 x 1, 4 x 4 x 2): steps/s,
#               tokens/s, peak memory per GPU, loss curve; then the same with use_liger_kernel if time is left
# Output ($OUT, <= 8 files): env.txt gen.json genfp32.json eval.json sft.json summary.md logs.tgz
set -uo pipefail
smoke=0
if [ "${1:-}" = --cpu-smoke ]; then smoke=1; shift; fi
out=${1:-${OUT:?usage: run_gpu_round3.sh [--cpu-smoke] OUT_DIR}}
budget=${ROUND3_BUDGET_S:-465}  # seconds from the start after which nothing new starts
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=/tmp/guard-bench-round3
rm -rf "$work" && mkdir -p "$work/logs"
T0=$(date +%s)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ $smoke = 0 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || echo "WARNING: installing .whl failed"
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v -i warn  # guard_train's built-ins are entry points
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
py=python3
[ $smoke = 1 ] && py=python

left() { echo $((T0 + budget - $(date +%s))); }
# part NAME LIMIT_S CMD...: run CMD with at most min(LIMIT_S, what is left) seconds; never stops the script
part() {
  local name=$1 limit=$2; shift 2
  local rest; rest=$(left)
  if [ "$rest" -lt 25 ]; then echo "== $name: SKIPPED (${rest}s left of the budget)"; return; fi
  [ "$limit" -gt "$rest" ] && limit=$rest
  local t; t=$(date +%s)
  echo "== $name: start at $((t - T0))s, limit ${limit}s"
  timeout --signal=TERM --kill-after=15 "$limit" "$@" >"$work/logs/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc=$rc after $(($(date +%s) - t))s"
  if [ $rc != 0 ]; then grep -v -i "warn" "$work/logs/$name.log" | tail -n 25; fi
  return 0
}

{
  echo "started $(date -u +%FT%TZ) smoke=$smoke"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $py - <<'EOF'
import importlib
for name in ("torch", "transformers", "accelerate", "trl", "datasets", "pyarrow", "peft", "triton", "liger_kernel"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(name, "NOT IMPORTABLE:", type(e).__name__, str(e)[:200])
try:
    import liger_kernel.transformers  # noqa: F401
    print("liger_kernel.transformers imports")
except Exception as e:  # noqa: BLE001
    print("liger_kernel.transformers NOT IMPORTABLE:", type(e).__name__, str(e)[:300])
import torch
print("cuda devices:", torch.cuda.device_count())
EOF
} 2>&1 | tee "$out/env.txt"

if [ $smoke = 1 ]; then
  shape=tiny; gen_rows="8 16"; base_rows=8; tokens=16; check=4; dev=(--device cpu)
  eval_common=(--cpu-smoke --max-new-tokens 32 --batch-size 4 --kill-after 4 --timeout 200)
  sft_common=(--cpu-smoke --max-steps 2 --global-batch 4 --per-device-batch 2 --max-length 256 --timeout 200)
else
  shape=llama-3.2-1b; gen_rows="64 256"; base_rows=64; tokens=256; check=16; dev=()
  eval_common=(--max-new-tokens 256 --batch-size 64 --kill-after 64 --timeout 110)
  sft_common=(--max-steps 8 --global-batch 32 --per-device-batch 4 --max-length 1024 --timeout 120)
fi
if [ -f .gpu-data/guardreasoner/benchmark/0_1_AegisSafetyTest.json ]; then
  data=(--data-dir "$PWD/.gpu-data")
  eval_benchmarks=(simple_safety_tests aegis harmbench_prompt xstest_response)
  sft_data=guardreasoner:1B:aegis,harmbench_response
else
  echo "NOTE: no .gpu-data: eval on the demo sets (60 samples), SFT on synthetic demo traces"
  data=(); eval_benchmarks=(demo); sft_data=synthetic:demo
fi

# 1-2: generation throughput and greedy checks
part gen 150 $py benchmarks/generation_throughput.py --shape $shape --batch-sizes $gen_rows --output-len $tokens \
  --backends fast fast-unfused generate --baseline generate --baseline-batch-sizes $base_rows --check $check \
  "${dev[@]}" --workdir "$work/gen" --json "$out/gen.json"
part genfp32 80 $py benchmarks/generation_throughput.py --shape $shape --dtype float32 --batch-sizes $check \
  --output-len 64 --backends fast fast-unfused --baseline fast-unfused --check $check "${dev[@]}" \
  --workdir "$work/genfp32" --json "$out/genfp32.json"

# 3: the checkpoint the eval and SFT parts load (bf16 on disk: half the bytes to read per process)
model=$work/llama-1b
if [ $smoke = 1 ]; then
  part model 60 $py -c "from guard_eval.tiny import build_tiny_model as b; b('$model')"
else
  part model 90 $py -c "
import torch; torch.set_default_device('cuda'); torch.set_default_dtype(torch.bfloat16)
from guard_eval.tiny import build_tiny_model as b
b('$model', hidden_size=2048, num_layers=16, intermediate_size=8192, num_heads=32)"
  [ -f "$model/config.json" ] || part model-cpu 150 $py -c "from guard_eval.tiny import build_tiny_model as b
b('$model', hidden_size=2048, num_layers=16, intermediate_size=8192, num_heads=32)"
fi

# 4: data-parallel evaluation, 1 vs 2 processes, and a killed rank
part eval 230 $py benchmarks/multi_gpu.py eval --model "$model" --processes 2 --benchmarks "${eval_benchmarks[@]}" \
  "${data[@]}" "${eval_common[@]}" --workdir "$work/eval" --json "$out/eval.json"

# 5: FSDP SFT 1 vs 2 GPUs (and with Liger while time is left: no variant starts after the deadline)
deadline=$((T0 + budget - 75))
part sft 400 $py benchmarks/multi_gpu.py sft --model "$model" --processes 2 --liger --sft-data "$sft_data" \
  "${data[@]}" "${sft_common[@]}" --deadline $deadline --workdir "$work/sft" --json "$out/sft.json"

$py benchmarks/round3_summary.py "$out" | tee "$out/summary.md"
(cd "$work" && find . -name '*.log' | tar czf "$out/logs.tgz" -T -) 2>/dev/null
echo "done after $(($(date +%s) - T0))s; files in $out: $(ls "$out" | tr '\n' ' ')"
