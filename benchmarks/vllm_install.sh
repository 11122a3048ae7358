#!/usr/bin/env bash
# vLLM 0.24.0 on the GPU image from carried wheels (what and why: benchmarks/vllm_wheels.md).
#
# Here (no GPU), once: the wheels are fetched and cut into .whl-vllm/p1 .. p6 (each <= 48 MiB, so that one batch
#                      plus the ~12 MB repo stays under the 64 MiB a device call may carry).
# Device, one call per batch, back to back (the machine keeps /tmp while it is held):
#     bash benchmarks/vllm_install.sh stash pN        # carry .whl-vllm/pN; copies it into /tmp/vllm-wheels
# Device, after the last stash (same or next call):
#     bash benchmarks/vllm_install.sh install         # joins + checks the vllm wheel, installs to /tmp/vllm-site
# then, in every command that uses vLLM:
#     export PYTHONPATH=/tmp/vllm-site VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1
set -euo pipefail
cd "$(dirname "$0")/.."

W=/tmp/vllm-wheels
SITE=/tmp/vllm-site
VLLM_WHL=vllm-0.24.0-cp38-abi3-manylinux_2_28_x86_64.whl
VLLM_SHA256=2d2831aeba311292250df0132dbc4d8e9f42c654536eaec48e6fe58acb1822cf
VLLM_PARTS=6
# Only installed when the image's typing_extensions is older than pydantic-core/openai need (>= 4.14.1).
TE_FALLBACK=typing_extensions-4.15.0-py3-none-any.whl

stash() {
    local b=${1:?usage: stash pN}
    [ -d ".whl-vllm/$b" ] || { echo "no .whl-vllm/$b here: name it in carry" >&2; exit 1; }
    mkdir -p "$W"
    cp ".whl-vllm/$b"/* "$W"/
    echo "stashed $b: $(ls "$W" | wc -l) files, $(du -sh "$W" | cut -f1) in $W"
}

assemble() {
    if [ -f "$W/$VLLM_WHL" ] && echo "$VLLM_SHA256  $W/$VLLM_WHL" | sha256sum -c --status; then
        echo "vllm wheel already joined"; return
    fi
    local n; n=$(ls "$W/$VLLM_WHL".part-* 2>/dev/null | wc -l || true)
    if [ "$n" -ne "$VLLM_PARTS" ]; then
        echo "have $n of $VLLM_PARTS vllm parts: $(ls "$W" 2>/dev/null | grep part- | tr '\n' ' ')" >&2
        echo "stash the missing batches first (bash benchmarks/vllm_install.sh stash pN)" >&2; exit 1
    fi
    # split -b names its pieces .part-aa, .part-ab, ...: the C-locale sort is their order
    LC_ALL=C ls "$W/$VLLM_WHL".part-* | LC_ALL=C sort | xargs cat > "$W/$VLLM_WHL"
    echo "$VLLM_SHA256  $W/$VLLM_WHL" | sha256sum -c || { rm -f "$W/$VLLM_WHL"; exit 1; }
    rm -f "$W/$VLLM_WHL".part-*
}

install() {
    assemble
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
    stash) stash "${2:-}" ;;
    install) install ;;
    *) echo "usage: bash benchmarks/vllm_install.sh stash pN | install" >&2; exit 2 ;;
esac
