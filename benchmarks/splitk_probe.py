#!/usr/bin/env python
"""Can a split-K Triton GEMM beat cuBLAS on the decode step's narrow GEMMs?

At 256 rows cuBLAS runs the down projection (K=8192 -> N=2048) with 64x64 tiles: 128 CTAs that each re-read their
rows of the activations and columns of the weight, 262 MB from L2 for a 34 MB weight (19.8 us, 435 TFLOPS; round 8's
``gemm_probe.py``). Tiles as tall as the batch, with K split across CTAs, read the weight once and the activations
N / BN times. The float32 partial sums are added by the kernel that follows the GEMM anyway, the residual add and
RMSNorm, so the split costs no extra kernel.

Per layer-sized weight set (16 distinct weights, none left in L2), a CUDA graph of 20 passes:

* ``cublas``: ``F.linear`` then the add+RMSNorm kernel reading its bf16 output (what a step runs, Liger's kernel
  replaced by this file's, which does the same work);
* ``triton``: the split-K GEMM writing ``splits`` float32 partials, then the add+RMSNorm kernel summing them.

    python benchmarks/splitk_probe.py --rows 64 256 --json splitk.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

# (benchmarks/ is on the path when run as a script)
from decode_attention_bench import timed
from gemm_probe import SHAPES as GEMMS


@triton.jit
def splitk_gemm(X, W, P, M, N, stride_xm, stride_wn, K_PER: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                BK: tl.constexpr):  # fmt: skip
    """``P[split] = X[:, ks] @ W[:, ks].T`` over split ``program_id(2)``'s ``K_PER`` columns ``ks``."""
    pid_n, pid_m, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = split * K_PER + tl.arange(0, BK)
    x_ptrs = X + rm[:, None] * stride_xm + rk[None, :]
    w_ptrs = W + rn[None, :] * stride_wn + rk[:, None]
    acc = tl.zeros((BM, BN), tl.float32)
    for _ in range(0, K_PER, BK):
        a = tl.load(x_ptrs, mask=rm[:, None] < M, other=0.0)
        b = tl.load(w_ptrs, mask=rn[None, :] < N, other=0.0)
        acc = tl.dot(a, b, acc)
        x_ptrs += BK
        w_ptrs += BK
    out = P + split * M * N + rm[:, None] * N + rn[None, :]
    tl.store(out, acc.to(P.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def add_norm(P, R, NW, OUT, ROUT, M, N, eps, SPLITS: tl.constexpr, BLOCK: tl.constexpr):
    """``ROUT = round(sum of P's splits) + R``, ``OUT = rms_norm(ROUT) * NW`` for row ``program_id(0)``."""
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    h = tl.zeros((BLOCK,), tl.float32)
    for s in tl.static_range(SPLITS):
        h += tl.load(P + s * M * N + row * N + cols, mask=mask, other=0.0).to(tl.float32)
    dtype = R.dtype.element_ty
    summed = (h.to(dtype).to(tl.float32) + tl.load(R + row * N + cols, mask=mask, other=0.0).to(tl.float32)).to(dtype)
    tl.store(ROUT + row * N + cols, summed, mask=mask)
    x = summed.to(tl.float32)
    rstd = tl.rsqrt(tl.sum(x * x, 0) / N + eps)
    y = (x * rstd).to(dtype) * tl.load(NW + cols, mask=mask, other=0.0)
    tl.store(OUT + row * N + cols, y.to(dtype), mask=mask)


def gemm(x, w, cfg, out=None):
    bm, bn, bk, splits, warps, stages = cfg
    m, k = x.shape
    n = w.shape[0]
    assert k % (splits * bk) == 0
    if out is None:
        out = torch.empty(splits, m, n, device=x.device, dtype=torch.float32 if splits > 1 else x.dtype)
    grid = (triton.cdiv(n, bn), triton.cdiv(m, bm), splits)
    splitk_gemm[grid](x, w, out, m, n, x.stride(0), w.stride(0), K_PER=k // splits, BM=bm, BN=bn, BK=bk,
                      num_warps=warps, num_stages=stages)  # fmt: skip
    return out


def norm(parts, residual, weight, out, rout):
    splits = parts.shape[0] if parts.dim() == 3 else 1
    m, n = residual.shape
    add_norm[(m,)](parts, residual, weight, out, rout, m, n, 1e-5, SPLITS=splits, BLOCK=triton.next_power_of_2(n),
                   num_warps=8)  # fmt: skip


SHAPES = {name: GEMMS[name] for name in ("qkv", "o_proj", "down")}  # (K, N): the narrow ones
# (BM, BN, BK, splits, warps, stages) tried per (shape, rows)
CONFIGS = {
    ("down", 256): [(128, 128, 64, 4, 8, 4), (128, 128, 128, 4, 8, 3), (256, 128, 64, 8, 8, 3), (128, 64, 64, 2, 4, 4),
                    (64, 128, 64, 2, 4, 4), (128, 128, 64, 2, 8, 4), (256, 64, 64, 4, 8, 4), (64, 64, 128, 1, 4, 4)],
    ("o_proj", 256): [(128, 128, 64, 4, 8, 4), (128, 64, 64, 2, 4, 4), (64, 128, 64, 2, 4, 4), (256, 128, 64, 8, 8, 3),
                      (128, 128, 128, 2, 8, 3), (64, 64, 64, 1, 4, 4)],
    ("qkv", 256): [(128, 64, 64, 1, 4, 4), (64, 128, 64, 1, 4, 4), (128, 128, 64, 2, 8, 4), (64, 64, 64, 1, 4, 4),
                   (128, 128, 64, 1, 8, 4)],
    ("down", 64): [(64, 128, 64, 8, 4, 4), (64, 64, 64, 4, 4, 4), (64, 128, 128, 8, 4, 3), (64, 64, 128, 8, 4, 3)],
    ("o_proj", 64): [(64, 128, 64, 8, 4, 4), (64, 64, 64, 4, 4, 4), (64, 64, 64, 2, 4, 4)],
    ("qkv", 64): [(64, 64, 64, 2, 4, 4), (64, 128, 64, 4, 4, 4), (64, 64, 64, 1, 4, 4)],
}  # fmt: skip


def measure(name: str, k: int, n: int, weights: list, rows: int) -> list[dict]:
    """Microseconds per call of each form for one GEMM shape at ``rows`` rows."""
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    residual = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    nw = torch.rand(n, device="cuda", dtype=torch.bfloat16)
    out, rout = torch.empty_like(residual), torch.empty_like(residual)
    reference = F.linear(x, weights[0])
    fused = name != "qkv"  # q/k/v feed the attention: their GEMM writes one bf16 output

    def cublas():
        for _ in range(20):
            for w in weights:
                h = F.linear(x, w)
                if fused:
                    norm(h, residual, nw, out, rout)

    def triton_form(cfg, parts):
        def fn():
            for _ in range(20):
                for w in weights:
                    gemm(x, w, cfg, parts)
                    if fused:
                        norm(parts, residual, nw, out, rout)

        return fn

    results = [{"gemm": name, "rows": rows, "form": "cublas", "us": timed(cublas, repeats=20) / (20 * len(weights))}]
    print(json.dumps(results[-1]), flush=True)
    for cfg in CONFIGS.get((name, rows), []):
        if not fused and cfg[3] > 1:
            continue
        parts = gemm(x, weights[0], cfg)
        err = (parts.float().sum(0) - reference.float()).abs().max().item()
        us = timed(triton_form(cfg, parts), repeats=20) / (20 * len(weights))
        results.append({"gemm": name, "rows": rows, "form": "triton", "config": cfg, "us": us, "max_abs_err": err})
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[64, 256])
    p.add_argument("--json")
    args = p.parse_args()
    results = []
    for name, (k, n) in SHAPES.items():
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(16)]
        results += [row for rows in args.rows for row in measure(name, k, n, weights, rows)]
        del weights
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
