"""Seconds to evaluate a whole suite end to end through ``guard-eval run``, and where they go.

Runs ``guard-eval run`` in this process (the same code path as the command) and times, with a device sync at each
boundary, the fast loop's prefill and decode inside every ``generate`` call. The rest of the wall time is model and
data loading, tokenizing, parsing, scoring and writing. Writes one JSON with the totals and the run's own results.
``--fake-generation`` skips the model's decoding (random tokens) to time only that host-side rest.

    python benchmarks/suite_time.py --model DIR --data-dir DATA --output /tmp/run --json suite.json \\
        -- --benchmarks guardreasoner --max-new-tokens 1024 --batch-size 512
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
    p.add_argument("--data-dir", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--fake-generation", action="store_true",
                   help="the decode loop returns random tokens at once (max-new-tokens each, no EOS): times only the "
                   "host-side work (tokenize, decode, parse, score, write) on any machine")  # fmt: skip
    p.add_argument("run_args", nargs="*", help="more guard-eval run arguments (after --)")
    args = p.parse_args()

    import torch

    from guard_eval import cli
    from guard_eval.generation.fast_decode import StaticDecoder

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    spent = {"generate_s": 0.0, "prefill_s": 0.0, "calls": 0, "new_tokens": 0}
    original_launch, original_prefill = StaticDecoder.launch, StaticDecoder._prefill
    if args.fake_generation:
        from guard_eval.generation.fast_decode import HostCopy

        stream = torch.Generator().manual_seed(0)

        def original_launch(self, input_ids, attention_mask, *, max_new_tokens, num_samples=1, **kw):
            rows = input_ids.shape[0] * num_samples
            return HostCopy(torch.randint(3, self.model.config.vocab_size, (rows, max_new_tokens), generator=stream))

    def launch(self, *a, **kw):
        # Timed from a synchronised start to the batch's ids on the host: the next batch is no longer queued while
        # this one finishes (a few ms a batch of host work that the untimed run overlaps).
        sync()
        start = time.perf_counter()
        launched = original_launch(self, *a, **kw)
        out = launched.result()
        spent["generate_s"] += time.perf_counter() - start
        spent["calls"] += 1
        spent["new_tokens"] += int((out != self.pad_token_id).sum())
        return launched

    def prefill(self, *a, **kw):
        sync()
        start = time.perf_counter()
        out = original_prefill(self, *a, **kw)
        sync()
        spent["prefill_s"] += time.perf_counter() - start
        return out

    StaticDecoder.launch, StaticDecoder._prefill = launch, prefill
    # Batch by batch: the prefill/decode split is timed inside StaticDecoder.launch (continuous batching is timed as
    # a whole by benchmarks/continuous_probe.py).
    argv = ["run", "--model", args.model, "--data-dir", args.data_dir, "--output", args.output, "--no-progress",
            "--backend-option", "continuous=false", *args.run_args]  # fmt: skip
    start = time.perf_counter()
    code = cli.main(argv)
    total = time.perf_counter() - start
    results = json.loads((Path(args.output) / "results.json").read_text())
    decode = spent["generate_s"] - spent["prefill_s"]
    summary = {"argv": argv, "exit_code": code, "total_s": total, **spent, "decode_s": decode,
               "other_s": total - spent["generate_s"], "decode_fraction": decode / total,
               "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "items": sum(b.get("n", 0) for b in results.get("benchmarks", {}).values()) or None,
               "results": results}  # fmt: skip
    Path(args.json).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=1))
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
