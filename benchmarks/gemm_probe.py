#!/usr/bin/env python
"""The decode step's GEMMs alone, at decode sizes: ``rows`` tokens through each weight of a Llama-3.2-1B layer (and
the lm_head), bf16, in three forms, to see whether another form gets a faster kernel from cuBLAS than ``F.linear``:

* ``linear``: ``F.linear(x, w)`` (what the model runs);
* ``w_xt``: ``(w @ x.T).T``, the same product with the weight as the left operand (cuBLAS then tiles the weight's
  rows, not the few tokens);
* ``cublaslt``: ``F.linear`` under ``torch.backends.cuda.preferred_blas_library("cublaslt")``.

Each form is captured 20 times in one CUDA graph per layer-sized weight set (16 distinct weights, as a step reads
them: no weight stays in L2 between calls); the time is the graph's replay over 20 x 16 calls (median of 20).

    python benchmarks/gemm_probe.py --rows 64 256 --json gemm.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from decode_attention_bench import timed  # (benchmarks/ is on the path when run as a script)

SHAPES = {"qkv": (2048, 3072), "o_proj": (2048, 2048), "gate_up": (2048, 16384), "down": (8192, 2048),
          "lm_head": (2048, 128256)}  # fmt: skip
FORMS = {"linear": lambda x, w: F.linear(x, w), "w_xt": lambda x, w: (w @ x.T).T,
         "cublaslt": lambda x, w: F.linear(x, w)}  # fmt: skip


def per_call_us(form, x, weights, outs, repeats: int = 20) -> float:
    """Microseconds of one call: ``repeats`` passes over ``weights`` captured in one graph (median of 20 replays)."""

    def passes():
        for _ in range(repeats):
            for i, w in enumerate(weights):
                outs[i] = form(x, w)

    return timed(passes, repeats=20) / (repeats * len(weights))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[64, 256])
    p.add_argument("--json")
    args = p.parse_args()
    results = []
    for name, (k, n) in SHAPES.items():
        count = 1 if name == "lm_head" else 16  # (the lm_head alone is larger than L2)
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(count)]
        for rows in args.rows:
            x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
            reference = F.linear(x, weights[0])
            for form_name, form in FORMS.items():
                torch.backends.cuda.preferred_blas_library("cublaslt" if form_name == "cublaslt" else "cublas")
                outs = [None] * len(weights)
                us = per_call_us(form, x, weights, outs)
                same = bool(torch.equal(form(x, weights[0]), reference))
                row = {"gemm": name, "rows": rows, "form": form_name, "us": us, "tflops": 2 * rows * k * n / us / 1e6,
                       "weight_gb_s": 2 * k * n / us / 1e3, "bitwise_equal_to_linear": same}  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
        del weights
    torch.backends.cuda.preferred_blas_library("cublas")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
