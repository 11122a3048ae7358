"""F1 vs reasoning tokens: one model evaluated under several reasoning budgets (issue 18, item 4).

Each budget is a ``guard-eval run --reasoning-budget N`` into ``OUT/budget-N`` (``OUT/budget-none``: unlimited), so
the runs resume and ``guard-eval compare``/``smol_table.py`` read them like any other. Prints and writes a table:
budget, weighted F1 per task type (the runner's averages), parse failures, mean output tokens (the model's tokenizer).

    python benchmarks/reasoning_budget.py --model runs/smol/sft --budgets 64 128 256 none --out runs/smol/budget \\
        --benchmarks toxicchat beavertails xstest_refusal --max-new-tokens 384 --batch-size 512
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def mean_tokens(run_dir: Path, tokenizer) -> float:
    texts = [json.loads(line).get("output") or "" for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return round(sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts) / max(len(texts), 1), 1)


def main(argv: list[str] | None = None) -> int:
    from guard_eval.cli import main as guard_eval
    from guard_eval.model_sources import resolve
    from guard_eval.modeling import load_tokenizer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--budgets", nargs="+", default=["64", "128", "256", "none"], help="token budgets; 'none' = unlimited")
    p.add_argument("--out", required=True)
    p.add_argument("--benchmarks", nargs="+", default=["demo"])
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--limit", type=int, help="a seeded sample of at most N items per benchmark")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--json", help="also write the table as JSON here (default: OUT/reasoning_budget.json)")
    args = p.parse_args(argv)
    tokenizer = load_tokenizer(resolve(args.model) if args.model != "tiny" else args.model)
    rows = []
    for budget in args.budgets:
        run_dir = Path(args.out) / f"budget-{budget}"
        cmd = ["run", "--model", args.model, "--benchmarks", *args.benchmarks, "--output", str(run_dir),
               "--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.batch_size), "--no-progress",
               "--name", f"budget-{budget}"]  # fmt: skip
        if args.device:
            cmd += ["--device", args.device]
        if budget != "none":
            cmd += ["--reasoning-budget", budget]
        if args.limit:
            cmd += ["--limit", str(args.limit), "--sample-seed", str(args.sample_seed)]
        if guard_eval(cmd) != 0:
            return 1
        results = json.loads((run_dir / "results.json").read_text())
        bench = results["benchmarks"]
        n = sum(m.get("n", 0) for m in bench.values())
        failures = sum(m.get("parse_failures", 0) for m in bench.values())
        rows.append({"budget": budget, "averages": results.get("averages", {}),
                     "f1": {b: m.get("f1") for b, m in bench.items()}, "n": n,
                     "parse_fail_pct": round(100 * failures / max(n, 1), 2), "mean_tokens": mean_tokens(run_dir, tokenizer)})  # fmt: skip
    print("| budget | " + " | ".join(args.benchmarks) + " | parse fail % | mean tokens |")
    print("|---" * (len(args.benchmarks) + 3) + "|")
    for r in rows:
        f1 = " | ".join("-" if r["f1"].get(b) is None else f"{r['f1'][b]:.1f}" for b in args.benchmarks)
        print(f"| {r['budget']} | {f1} | {r['parse_fail_pct']} | {r['mean_tokens']} |")
    out = Path(args.json or Path(args.out) / "reasoning_budget.json")
    out.write_text(json.dumps(rows, indent=2))
    print(f"table: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
