# Round 10, call 4: the working tree (call 3's code + the Triton argmax and packed cache write) against HEAD 4e33230
# (.gpu/old), alternating, as call 2's ab.sh; then the decode-step profile at 256 rows and the probe on the new code.
set -u
bash benchmarks/results/round10-h200/call2-ab/ab.sh
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
timeout 120 python3 benchmarks/profile_decode.py --rows 256 --kernels 30 > $OUT/profile-decode.log 2>&1
grep "rows=\|eager step\|argmax\|partial_attention\|packed_store" $OUT/profile-decode.log | cut -c1-200
