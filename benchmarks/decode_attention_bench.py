"""Decode attention alone: the Triton kernel (guard_eval.generation.decode_attention) vs the fast loop's SDPA path.

One decode step of one layer of a Llama-3.2-1B-shaped cache (32 query heads, 8 key/value heads, head_dim 64, bf16),
prompts of 170-185 tokens left-padded to the batch's longest, ``--generated`` tokens already decoded, the attended
length rounded up to the loop's 128-slot bucket. Reports microseconds per call (CUDA graphs, median of 50 replays),
the bytes each path must read (the attended keys and values) and the bandwidth that implies, for a sweep of split
counts and block sizes, and the largest difference from SDPA.

    python benchmarks/decode_attention_bench.py --rows 64 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from guard_eval.generation.decode_attention import choose_splits, decode_attention
from guard_eval.generation.fast_decode import _static_cache_attention


def timed(fn, repeats: int = 50) -> float:
    """Median microseconds of one replay of ``fn`` captured as a CUDA graph."""
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[64, 256])
    p.add_argument("--generated", type=int, nargs="+", default=[128], help="tokens decoded so far")
    p.add_argument("--blocks", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--warps", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--json")
    args = p.parse_args()
    heads, kv_heads, dim, bucket = 32, 8, 64, 128
    results = []
    for rows, generated in [(r, n) for r in args.rows for n in args.generated]:
        g = torch.Generator().manual_seed(rows)
        lengths = torch.randint(170, 186, (rows,), generator=g)
        prompt_len = int(lengths.max())
        position = prompt_len + generated - 1
        kv_len = -(-(position + 1) // bucket) * bucket
        total = kv_len + bucket
        q = torch.randn(rows, heads, 1, dim, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(rows, kv_heads, total, dim, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(rows, kv_heads, total, dim, device="cuda", dtype=torch.bfloat16)
        slots = torch.arange(kv_len)
        attend = ((slots >= prompt_len - lengths[:, None]) & (slots <= position)).cuda()
        attended = int(attend.sum())
        bytes_needed = attended * kv_heads * dim * 2 * 2  # keys and values, bf16
        mask4 = attend.view(rows, 1, 1, kv_len)
        reference = _static_cache_attention(None, q, k, v, mask4, scaling=dim**-0.5)[0]
        sdpa_us = timed(lambda: _static_cache_attention(None, q, k, v, mask4, scaling=dim**-0.5))
        row = {"rows": rows, "generated": generated, "kv_len": kv_len, "attended_slots_per_row": attended / rows, "bytes_needed": bytes_needed,
               "sdpa_us": sdpa_us, "sdpa_gb_s": bytes_needed / sdpa_us / 1e3, "triton": []}  # fmt: skip
        auto = choose_splits(rows, kv_heads, kv_len)
        variants = [dict(block=b, splits=s, num_warps=w, num_stages=n)
                    for b in args.blocks for s in sorted({1, 2, auto}) for w in args.warps for n in args.stages]  # fmt: skip
        for kw in variants:
            out = decode_attention(q, k, v, attend, dim**-0.5, **kw)
            err = float((out.float() - reference.float()).abs().max())
            us = timed(lambda kw=kw: decode_attention(q, k, v, attend, dim**-0.5, **kw))
            default = kw == dict(block=128, splits=auto, num_warps=2, num_stages=2)
            row["triton"].append({**kw, "default": default, "us": us, "gb_s": bytes_needed / us / 1e3,
                                  "max_abs_diff": err})  # fmt: skip
        best = min(row["triton"], key=lambda r: r["us"])
        print(f"rows {rows} generated {generated}: kv_len {kv_len}, sdpa {sdpa_us:.1f} us ({row['sdpa_gb_s']:.0f} GB/s);"
              f" triton default {next(r['us'] for r in row['triton'] if r['default']):.1f} us, best {best['us']:.1f} us"
              f" ({best}), max diff {max(r['max_abs_diff'] for r in row['triton']):.3g}", flush=True)
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
