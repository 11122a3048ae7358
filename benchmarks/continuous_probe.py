#!/usr/bin/env python
"""Continuous batching against batch-by-batch decoding on a real checkpoint, in one process: ``HFBackend.generate``
over guard prompts of the given benchmarks (every ``--stride``-th item), greedy, for each setting; seconds, generated
tokens and how many outputs equal the batch-by-batch ones.

    python benchmarks/continuous_probe.py --model runs/smol/sft --benchmarks toxicchat beavertails --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--benchmarks", nargs="+", required=True)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--refill-at", type=float, nargs="+", default=[0.0, 0.125, 0.25])
    p.add_argument("--json")
    args = p.parse_args()

    import torch

    from guard_eval.generation import GenerationConfig
    from guard_eval.generation.hf import HFBackend
    from guard_eval.prompting import build_prompt
    from guard_eval.selection import resolve_benchmarks

    samples = [s for b in resolve_benchmarks(args.benchmarks) for s in b.load()][:: args.stride]
    prompts = [build_prompt(s.prompt, s.response, "chat") for s in samples]
    static = HFBackend(args.model, continuous=False)  # explicit: round 8's probe timed continuous against itself
    continuous = HFBackend.from_loaded(static.model, static.tokenizer, continuous=True)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    static.generate(prompts[:1024], config)  # warm-up: graphs, kernels
    continuous.generate(prompts[:1024], config)
    results, reference = [], None
    settings = [("static", static, None)] + [("continuous", continuous, r) for r in args.refill_at]
    for name, backend, refill_at in settings:
        if refill_at is not None:
            backend.decoder.refill_at = refill_at
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        outs = [o[0] for o in backend.generate(prompts, config)]
        seconds = time.perf_counter() - start
        reference = reference or outs
        tokens = sum(len(ids) for ids in static.tokenizer(outs, add_special_tokens=False)["input_ids"])
        row = {"mode": name, "refill_at": refill_at, "items": len(prompts), "seconds": seconds,
               "output_tokens": tokens, "tokens_per_s": tokens / seconds,
               "same_output_as_static": sum(a == b for a, b in zip(outs, reference))}  # fmt: skip
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(static.device), "model": args.model,
                                               "results": results}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
