#!/usr/bin/env bash
# vLLM 0.24.0 on the GPU image from carried wheels (what and why: benchmarks/vllm_wheels.md).
#
# Here (no GPU):  bash benchmarks/vllm_install.sh fetch DIR   # the 21 pinned cp312 wheels (~282 MiB) into DIR
# Device:         VLLM_WHEELS=DIR bash benchmarks/vllm_install.sh install   # into /tmp/vllm-site, checked
# then, in every command that uses vLLM:
#     export PYTHONPATH=/tmp/vllm-site VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1
# A device call carries at most 64 MiB, so the wheels travel in parts: benchmarks/gpu_vllm.sh does that.
set -euo pipefail
cd "$(dirname "$0")/.."

W=${VLLM_WHEELS:-/tmp/vllm-wheels}
SITE=/tmp/vllm-site
VLLM_WHL=vllm-0.24.0-cp38-abi3-manylinux_2_28_x86_64.whl
VLLM_SHA256=2d2831aeba311292250df0132dbc4d8e9f42c654536eaec48e6fe58acb1822cf
# Only installed when the image's typing_extensions is older than pydantic-core/openai need (>= 4.14.1).
TE_FALLBACK=typing_extensions-4.15.0-py3-none-any.whl

WHEELS="vllm==0.24.0 pydantic==2.13.5 pydantic-core==2.46.5 annotated-types==0.8.0 typing-inspection==0.4.2
    msgspec==0.22.0 pyzmq==27.3.0 cbor2==6.3.0 cachetools==8.0.2 pybase64==1.5.1 openai-harmony==0.0.8 openai==2.54.0
    distro==1.9.0 sniffio==1.3.1 fastapi==0.136.3 starlette==1.10.0 partial-json-parser==0.2.1.1.post7
    llguidance==1.7.6 xgrammar==0.2.9 apache-tvm-ffi==0.1.11 typing-extensions==4.15.0"

fetch() {
    local dir=${1:?usage: fetch DIR} platforms=""
    for v in 2_39 2_35 2_34 2_31 2_28 2_27 2_26 2_24 2_17 2_12 2_5; do platforms="$platforms --platform manylinux_${v}_x86_64"; done
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$dir" $WHEELS
    echo "$VLLM_SHA256  $dir/$VLLM_WHL" | sha256sum -c
    echo "$(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1) in $dir"
}

install() {
    echo "$VLLM_SHA256  $W/$VLLM_WHL" | sha256sum -c
    # one version of each distribution, or pip --target would leave a mix
    local dups
    dups=$(ls "$W"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
    [ -z "$dups" ] || { echo "two versions of: $dups" >&2; exit 1; }
    local wheels; wheels=$(ls "$W"/*.whl | grep -v "/$TE_FALLBACK\$")
    rm -rf "$SITE"
    # shellcheck disable=SC2086
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $wheels
    if ! python3 -c "
import sys
from importlib.metadata import version
from packaging.version import Version
sys.exit(Version(version('typing_extensions')) < Version('4.14.1'))"; then
        echo "image typing_extensions is older than 4.14.1: adding $TE_FALLBACK"
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" --upgrade \
            "$W/$TE_FALLBACK"
    fi
    # vLLM 0.24.0 turns on FlashInfer's top-k/top-p sampler by default and then imports flashinfer, which is not
    # carried (it is only a faster sampler); without this the worker dies building its Sampler. Same as exporting
    # VLLM_USE_FLASHINFER_SAMPLER=0, but cannot be forgotten. An explicit VLLM_USE_FLASHINFER_SAMPLER=1 still wins.
    python3 - "$SITE/vllm/envs.py" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = '''        if "VLLM_USE_FLASHINFER_SAMPLER" in os.environ
        else True
'''
new = old.replace("else True", "else False")
if new in s:
    print("envs.py: FlashInfer sampler already off by default")
elif s.count(old) == 1:
    open(p, "w").write(s.replace(old, new))
    print("envs.py: FlashInfer sampler off by default")
else:
    sys.exit("envs.py: VLLM_USE_FLASHINFER_SAMPLER default not found; export VLLM_USE_FLASHINFER_SAMPLER=0")
EOF
    # Report (never fail on) requirements the image does not meet. vllm's own list names many packages left out
    # on purpose (see benchmarks/vllm_wheels.md): for vllm only version clashes of installed packages are shown.
    PYTHONPATH=$SITE python3 - "$SITE" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, distributions, version
from packaging.requirements import Requirement
site = sys.argv[1]
notes = []
for d in distributions(path=[site]):
    name = d.metadata["Name"]
    for r in d.requires or []:
        req = Requirement(r)
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            if name.lower() != "vllm":
                notes.append(f"{name}: needs {req}, not installed")
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            notes.append(f"{name}: needs {req}, have {have}")
print("requirement notes (expected: vllm's apache-tvm-ffi==0.1.9 (flashinfer's pin), numba==0.65.0, setuptools<81;"
      " openai's jiter (streaming only)):")
print("\n".join("  " + n for n in sorted(notes)) or "  none")
EOF
    echo "installed into $SITE ($(du -sh "$SITE" | cut -f1)); in each command that uses vLLM:"
    echo "  export PYTHONPATH=$SITE VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1"
    # vllm._C of older releases is vllm._C_stable_libtorch in 0.24.0 (platforms/cuda.py imports it)
    PYTHONPATH=$SITE python3 -c '
import torch, vllm, vllm._C_stable_libtorch, vllm.vllm_flash_attn.flash_attn_interface as fa
from vllm import LLM, SamplingParams
import vllm.v1.engine.core, vllm.v1.worker.gpu_worker, vllm.model_executor.models.llama
print("vllm", vllm.__version__, "torch", torch.__version__,
      "FA3 ok:", fa.is_fa_version_supported(3) if torch.cuda.is_available() else "no GPU")'
}

case "${1:-}" in
    fetch) fetch "${2:-}" ;;
    install) install ;;
    *) echo "usage: bash benchmarks/vllm_install.sh fetch DIR | install" >&2; exit 2 ;;
esac
