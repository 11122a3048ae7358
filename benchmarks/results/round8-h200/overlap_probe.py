#!/usr/bin/env python
"""Does the next batch's prefill overlap the current batch's decode? ``StaticDecoder.generate_greedy`` with and
without ``overlap``, for several prefill chunk sizes and check intervals, on a random-weight model shape (speed only).

Each setting generates ``--batches`` batches of ``--rows`` guard prompts (the throughput benchmark's items, sorted
by length as the HF backend sorts them), a forced ``--output-len`` tokens each, after an identical warm-up; prints
seconds, tokens/s, the fraction of the bound counting KV reads (as ``generation_throughput.py`` computes it) and
whether the tokens equal the sequential run's.

    git apply benchmarks/results/round8-h200/overlap.patch   # StaticDecoder.generate_greedy and its overlap option
    python benchmarks/results/round8-h200/overlap_probe.py --shape llama-3.2-1b --rows 256 --batches 2 4 --json out.json

Kept as the record of a negative result (docs/performance.md, "Round 8"): the patch was not merged.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, with overlap.patch applied
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/

from generation_throughput import SHAPES, copy_bandwidth, guard_items, kv_bytes_per_token, load_shape, weight_bytes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama-3.2-1b")
    p.add_argument("--rows", type=int, nargs="+", default=[256])
    p.add_argument("--batches", type=int, nargs="+", default=[2])
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--prefill-tokens", type=int, nargs="+", default=[32768, 8192, 4096])
    p.add_argument("--check-every", type=int, nargs="+", default=[16])
    p.add_argument("--device", default="cuda")
    p.add_argument("--json")
    args = p.parse_args()

    import torch

    from guard_eval.generation.fast_decode import StaticDecoder
    from guard_eval.generation.hf import eos_token_ids, left_padded

    cuda = args.device.startswith("cuda")
    dtype = "bfloat16" if cuda else "float32"
    model, tokenizer = load_shape(args.shape, args.device, dtype, Path("/tmp/guard-bench-overlap"))
    bandwidth, wbytes = copy_bandwidth(args.device), weight_bytes(model)
    kv_token = kv_bytes_per_token(model.config, next(model.parameters()).element_size())
    decoder = StaticDecoder(model, pad_token_id=tokenizer.pad_token_id, eos_token_ids=eos_token_ids(model, tokenizer))
    print(decoder.reasons, flush=True)
    results = []
    for rows in args.rows:
        for n_batches in args.batches:
            texts = guard_items(rows * n_batches, tokenizer)
            start = time.perf_counter()
            ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
            tokenize_s = time.perf_counter() - start
            ids.sort(key=len, reverse=True)
            batches = [left_padded(ids[i : i + rows], tokenizer.pad_token_id) for i in range(0, len(ids), rows)]
            pairs = [(b["input_ids"], b["attention_mask"]) for b in batches]
            prompt_tokens = statistics.mean(map(len, ids))

            def run() -> tuple[float, list]:
                sync = torch.cuda.synchronize if cuda else lambda: None
                sync()
                start = time.perf_counter()
                outs, marks = [], []
                for out in decoder.generate_greedy(pairs, max_new_tokens=args.output_len, ignore_eos=True):
                    outs.append(out)  # (each output is on the host: its batch has finished)
                    marks.append(time.perf_counter())
                sync()
                run.per_batch = [round(b - a, 4) for a, b in zip([start, *marks], marks)]
                return time.perf_counter() - start, outs

            settings = [(False, 32768, 16)] + [(True, t, c) for t in args.prefill_tokens for c in args.check_every]
            settings += [(False, 32768, 16)]  # again: does the order of the runs matter?
            reference = None
            for overlap, prefill_tokens, check_every in settings:
                decoder.overlap, decoder.prefill_tokens, decoder.check_every = overlap, prefill_tokens, check_every
                run()  # warm-up: graph captures, the second session
                seconds, outs = run()
                reference = reference or outs
                tokens = rows * n_batches * args.output_len
                kv_read = rows * (prompt_tokens + args.output_len / 2) * kv_token
                row = {"rows": rows, "batches": n_batches, "overlap": overlap, "prefill_tokens": prefill_tokens,
                       "check_every": check_every, "seconds": seconds, "tokens_per_s": tokens / seconds,
                       "fraction_of_bound_with_kv": tokens / seconds / (rows * bandwidth / (wbytes + kv_read)),
                       "same_tokens_as_sequential": all(torch.equal(a, b) for a, b in zip(outs, reference)),
                       "per_batch_s": run.per_batch, "tokenize_s": tokenize_s,
                       "prompt_tokens_mean": prompt_tokens}  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "copy_bandwidth": bandwidth,
                                               "results": results}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
