#!/usr/bin/env python
"""The decode attention with and without the step's new token (``decode_attention(..., new=NewToken)``).

Times one decode step's attention over 16 layers' caches (Llama-3.2-1B shape: 32 query heads, 8 KV heads, head_dim
64, bf16, ``--rows`` rows, 218-slot prompts, ``--generated`` tokens decoded) in one CUDA graph: the kernel without
the new token (the query already rotated, the key already written), with it, and variants of the kernel source with
one part of the new-token path removed (text patches of ``_decode_attention_kernels.py`` in a temporary module).
``--old-kernels FILE``: also the previous design from that kernel module, its ``rotary_store`` kernel then the
attention. Microseconds per layer, median of 20 replays. ``--sweep``: only the shipped kernel with the new token, over
block sizes, warps and stages (or, with ``--splits``, split counts).

    python benchmarks/fused_attention_probe.py --rows 256 64 \\
        --old-kernels .gpu/old/guard_eval/generation/_decode_attention_kernels.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (benchmarks/ is on the path when run as a script)
from decode_attention_bench import timed

from guard_eval.generation import decode_attention as attention

SOURCE = Path(attention.__file__).with_name("_decode_attention_kernels.py").read_text()
MASK_LOAD = "attend = tl.load(Mask + row * stride_mb + n, mask=n < hi, other=0) != 0"
PATCHES = {
    "no-rotation": [(("        q = _rotated(q_rows, d[None, :], cos[None, :], sin[None, :], in_group, HEAD_DIM)"
                      ".to(Q.dtype.element_ty)"),
                     "        q = tl.load(q_rows + d[None, :], mask=in_group, other=0.0)")],
    "no-store": [("    tl.store(k_slot + d, k)\n    tl.store(v_slot + d, v)\n", "")],
    # the attended slots from bounds instead of the mask: the rows attend to slots 54 .. 344 (the default --generated)
    "bounds-const": [(MASK_LOAD, "attend = (n >= 54) & (n < 345)")],
    "bounds-loaded": [("    lo = split * split_len\n", "    lo = split * split_len\n    last = tl.load(Slot)\n"),
                      (MASK_LOAD, "attend = (n >= last - 291) & (n < last)")],
    "bounds-skip": [("    lo = split * split_len\n", "    lo = split * split_len\n    last = tl.load(Slot)\n"),
                    ("for start in range(lo, hi, BLOCK_N):",
                     "for start in range((last - 291) // BLOCK_N * BLOCK_N, hi, BLOCK_N):"),
                    (MASK_LOAD, "attend = (n >= last - 291) & (n < last)")],
    "no-mask": [(MASK_LOAD, "attend = n < hi")],  # every slot up to kv_len, padding included
}  # fmt: skip


def variant(name: str, patches, folder: Path):
    text = SOURCE
    for old, new in patches:
        assert old in text, (name, old)
        text = text.replace(old, new)
    path = folder / f"kernels_{name.replace('-', '_')}.py"
    path.write_text(text)
    module = load(path)
    return module.partial_attention, module.merge_splits


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(rows: int, generated: int, layers: int, kernels: dict, old, sweep: list | None = None) -> list[dict]:
    """The cases' microseconds per layer at ``rows`` rows."""
    heads, kv_heads, dim, prompt, bucket = 32, 8, 64, 218, 128
    slot = prompt + generated - 1
    kv_len = -(-(slot + 1) // bucket) * bucket
    length = kv_len + bucket
    dev = {"device": "cuda", "dtype": torch.bfloat16}
    qkv = torch.randn(rows, (heads + 2 * kv_heads) * dim, **dev)
    q, k, v = (t.view(rows, -1, dim) for t in qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], -1))
    caches = [(torch.randn(rows, kv_heads, length, dim, **dev), torch.randn(rows, kv_heads, length, dim, **dev))
              for _ in range(layers)]  # fmt: skip
    valid = torch.zeros(rows, length, dtype=torch.bool, device="cuda")  # the slots written before the new one
    valid[:, prompt // 4 : slot] = True  # (some left padding)
    attended = rows * (slot - prompt // 4)
    attend = valid[:, :kv_len].clone()  # the previous design's mask: the new token's slot too
    attend[:, slot] = True
    cos, sin = torch.randn(2, rows, dim, **dev)
    at = torch.tensor([slot], device="cuda")
    q_in = q.contiguous()  # the query as the previous design's rotary kernel left it

    def run(case: str, warps: int, stages: int, block: int = 128, splits: int | None = None):
        def fn():
            for keys, values in caches:
                if case == "new":
                    token = attention.NewToken(k, v, cos, sin, at)
                    attention.decode_attention(q.unsqueeze(2), keys, values, valid[:, :kv_len], 0.125, new=token,
                                               block=block, num_warps=warps, num_stages=stages,
                                               splits=splits)  # fmt: skip
                    continue
                query = q_in
                if case == "old":
                    query = torch.empty_like(q_in)
                    old.rotary_store[(rows,)](
                        q, k, v, cos, sin, query, keys, values, at, q.stride(0), q.stride(1), k.stride(0),
                        k.stride(1), v.stride(0), v.stride(1), cos.stride(0), sin.stride(0), keys.stride(0),
                        keys.stride(1), keys.stride(2), HEADS=heads, KV_HEADS=kv_heads, BLOCK_H=heads, HALF=dim // 2,
                    )  # fmt: skip
                attention.decode_attention(query.unsqueeze(2), keys, values, attend, 0.125, num_warps=warps,
                                           num_stages=stages)  # fmt: skip
        return fn

    results = []
    if sweep:  # the shipped kernel with the new token over block sizes, warps, stages and splits
        for block, warps, stages, splits in sweep:
            try:
                us = timed(run("new", warps, stages, block, splits), repeats=20) / layers
            except Exception as e:  # noqa: BLE001 -- e.g. out of shared memory: the other settings still run
                print(f"block={block} warps={warps} stages={stages}: {type(e).__name__}: {e}"[:300])
                continue
            results.append({"rows": rows, "kernel": "shipped", "case": "new", "block": block, "warps": warps,
                            "stages": stages, "splits": splits, "us": us,
                            "tb_s": attended * 2 * kv_heads * dim * 2 / us / 1e6})  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
        return results
    for name, pair in kernels.items():
        attention._kernels = lambda pair=pair: pair
        cases = [("new", 2, 2), ("new", 4, 2)]
        if name == "shipped":
            cases = [("without new", 2, 2), ("without new", 4, 2), ("new", 2, 2), ("new", 4, 2), ("new", 4, 1),
                     ("new", 8, 2)]  # fmt: skip
            if old is not None:
                cases.insert(0, ("old", 2, 2))
        for case, warps, stages in cases:
            us = timed(run(case, warps, stages), repeats=20) / layers
            results.append({"rows": rows, "kernel": name, "case": case, "warps": warps, "stages": stages, "us": us})
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[256])
    p.add_argument("--generated", type=int, default=128)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--old-kernels", type=Path)
    p.add_argument("--sweep", action="store_true", help="only the shipped kernel over blocks, warps and stages")
    p.add_argument("--splits", type=int, nargs="+", help="with --sweep: these split counts (128-slot blocks, 2 stages, "
                   "2 and 4 warps) instead of the settings grid")  # fmt: skip
    p.add_argument("--json")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp())
    kernels = {"shipped": attention._kernels()}
    kernels.update({name: variant(name, patches, folder) for name, patches in PATCHES.items()})
    old = load(args.old_kernels) if args.old_kernels else None
    sweep = None
    if args.sweep:
        sweep = [(block, warps, stages, None) for block in (64, 128, 256) for warps in (2, 4, 8)
                 for stages in (1, 2, 3, 4)]  # fmt: skip
        if args.splits:
            sweep = [(128, warps, 2, splits) for splits in args.splits for warps in (2, 4)]
    results = [row for rows in args.rows
               for row in measure(rows, args.generated, args.layers, kernels, old, sweep)]  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
