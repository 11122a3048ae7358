# A/B of the decode attention kernel in one device session: new (working tree) vs old (HEAD), alternating.
set -u
pip_site() { [ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl; }
pip_site
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
K=guard_eval/generation/_decode_attention_kernels.py
cp $K /tmp/new_kernels.py
mkdir -p $OUT/ab
for round in 1 2; do
  for which in new old; do
    if [ $which = new ]; then cp /tmp/new_kernels.py $K; else cp benchmarks/scratch/old_kernels.py $K; fi
    timeout 100 python3 benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 64 256 --output-len 256 \
      --batches 2 --backends fast --json $OUT/ab/gen-$which-$round.json > $OUT/ab/gen-$which-$round.log 2>&1
    grep "^| fast" $OUT/ab/gen-$which-$round.log | sed "s/^/$which $round /"
  done
done
for which in new old; do
  if [ $which = new ]; then cp /tmp/new_kernels.py $K; else cp benchmarks/scratch/old_kernels.py $K; fi
  timeout 90 python3 benchmarks/profile_decode.py --rows 256 --kernels 25 > $OUT/ab/profile-$which.log 2>&1
  grep -i "attention\|step\|total" $OUT/ab/profile-$which.log | head -8 | sed "s/^/$which /"
done
cp /tmp/new_kernels.py $K
