#!/usr/bin/env python
"""Where a decode step of the fast loop spends its time: per-step latency (CUDA graphs, prefill excluded), the prefill's
time and kernels, and the kernels of one eager step, for a random-weight model shape on the GPU.

    python benchmarks/profile_decode.py --shape llama-3.2-1b --rows 64 256
    python benchmarks/profile_decode.py --shape llama-3.2-1b --rows 64 256 --no-fused-layers   # HF's layer forward
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_throughput import SHAPES, guard_items, load_shape, weight_bytes


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timings(decoder, enc, steps: int) -> tuple[float, float]:
    """(ms of a prefill and its first token, ms per decode step): the second is the time of ``1 + steps`` tokens minus
    that of 1 token (same prefill)."""

    def timed(n: int) -> float:
        decoder.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=n, ignore_eos=True)  # warm
        sync()
        start = time.perf_counter()
        decoder.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=n, ignore_eos=True)
        sync()
        return 1e3 * (time.perf_counter() - start)

    first = timed(1)
    return first, (timed(1 + steps) - first) / steps


def kernel_table(prof, what: str, runs: int, rows: int) -> None:
    events = prof.key_averages()
    total = sum(e.device_time_total for e in events if e.device_time_total) / runs / 1e3
    launches = sum(e.count for e in events if e.device_time_total) / runs
    print(f"{what}: {total:.3f} ms of kernel time in {launches:.0f} kernel launches", flush=True)
    print(events.table(sort_by="device_time_total", row_limit=rows, max_name_column_width=70))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama-3.2-1b")
    p.add_argument("--rows", type=int, nargs="+", default=[64])
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--device", default="cuda")
    p.add_argument("--kernels", type=int, default=25, help="rows of the kernel table")
    p.add_argument("--decode-attention", choices=["triton", "sdpa"], help="default: the loop's own choice")
    p.add_argument("--no-fused-layers", action="store_true", help="decode through HF's layer forward")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if args.device.startswith("cuda") else ProfilerActivity.CPU

    from guard_eval.generation.fast_decode import StaticDecoder
    from guard_eval.generation.hf import eos_token_ids

    model, tokenizer = load_shape(args.shape, args.device, "bfloat16" if args.device == "cuda" else "float32", Path("/tmp/guard-bench-profile"))
    wbytes = weight_bytes(model)
    for rows in args.rows:
        enc = tokenizer(guard_items(rows, tokenizer), return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs = {"pad_token_id": tokenizer.pad_token_id, "eos_token_ids": eos_token_ids(model, tokenizer),
                  "decode_attention": args.decode_attention,
                  "fused_layers": False if args.no_fused_layers else None}  # fmt: skip
        graphed = StaticDecoder(model, **kwargs)
        print(graphed.reasons, flush=True)
        prefill, ms = timings(graphed, enc, args.steps)
        tokens = int(enc["attention_mask"].sum())
        print(f"\nrows={rows} prompt_len={enc['input_ids'].shape[1]}: {ms:.3f} ms/step with CUDA graphs "
              f"({rows / ms * 1e3:,.0f} tok/s; weights alone at 3.0 TB/s: {wbytes / 3.0e9:.3f} ms); prefill and "
              f"first token {prefill:.1f} ms ({tokens / prefill * 1e3:,.0f} prompt tok/s)", flush=True)
        with profile(activities=[activity]) as prof:
            graphed.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=1, ignore_eos=True)
            sync()
        kernel_table(prof, "prefill", 1, args.kernels)
        eager = StaticDecoder(model, cuda_graphs=False, **kwargs)
        eager.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=16, ignore_eos=True)
        s = eager._session
        prompt_len = enc["input_ids"].shape[1]
        kv_len = -(-(prompt_len + 8) // eager.bucket) * eager.bucket
        with eager.decoding(), torch.inference_mode():
            s.step.zero_()  # replay steps 1..5 of that generation: the buffers hold 16 columns
            s.cache.position.fill_(prompt_len)
            for _ in range(2):
                eager._decode_step(s, kv_len)
            sync()
            with profile(activities=[activity]) as prof:
                for _ in range(3):
                    eager._decode_step(s, kv_len)
                sync()
        kernel_table(prof, "eager step", 3, args.kernels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
