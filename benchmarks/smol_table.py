"""The held-out table of docs/experiments.md from `guard-eval run` dirs (issue 12's toy experiment on SmolLM2-135M).

    python benchmarks/smol_table.py --reference sft base=runs/smol/eval/base sft=runs/smol/eval/sft ... \
        [--stages benchmarks/results/smol-135m/stages.jsonl]

Per model: F1 with its 95% bootstrap CI per held-out benchmark, the paper's sample-weighted averages per task type,
parse-failure rate, mean output tokens (the model's own tokenizer), reasoning quality (the judge summary in
results.json), and an exact McNemar test on per-sample correctness against ``--reference``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_samples(run: Path) -> list[dict]:
    path = run / "samples.jsonl" if (run / "samples.jsonl").is_file() else run / "samples.lean.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def mcnemar(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    from scipy.stats import binomtest

    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return only_a, only_b, p


def weighted_f1_delta(ref: dict, other: dict, benchmarks: list[str], resamples: int = 2000, seed: int = 0):
    """Paired bootstrap of the sample-weighted F1 over all ``benchmarks`` (other - ref): items are resampled within
    each benchmark, the same draw for both models. Returns (delta, (lo, hi), two-sided p)."""
    import numpy as np

    from guard_eval.metrics import _f1_from_counts, resolve_predictions
    from guard_eval.verdict import TaskType

    rng = np.random.default_rng(seed)
    total = np.zeros(resamples + 1)
    n_all = 0
    for b in benchmarks:
        keys = [k for k in ref if k[0] == b and k in other]
        task = ref[keys[0]]["task"]
        gold = [ref[k]["gold"] for k in keys]
        y = np.array([g == TaskType(task).positive for g in gold])
        preds = [resolve_predictions(gold, [m[k]["pred"] for k in keys], task) for m in (ref, other)]
        idx = np.vstack([np.arange(len(keys)), rng.integers(0, len(keys), size=(resamples, len(keys)))])
        t = y[idx]
        f1 = [_f1_from_counts((t & p[idx]).sum(1), (~t & p[idx]).sum(1), (t & ~p[idx]).sum(1)) for p in preds]
        total += len(keys) * (f1[1] - f1[0])
        n_all += len(keys)
    delta = total / n_all
    lo, hi = np.quantile(delta[1:], [0.025, 0.975])
    p = min(1.0, 2 * min((delta[1:] <= 0).mean(), (delta[1:] >= 0).mean()))
    return float(delta[0]), (float(lo), float(hi)), float(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    parser.add_argument("--reference", required=True, help="the NAME the McNemar test compares against")
    parser.add_argument("--tokenizer", default="smollm2-135m-instruct")
    args = parser.parse_args()

    from guard_eval.modeling import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    runs = dict(spec.split("=", 1) for spec in args.runs)
    results = {name: json.loads((Path(d) / "results.json").read_text()) for name, d in runs.items()}
    samples = {name: read_samples(Path(d)) for name, d in runs.items()}
    keyed = {name: {(s["benchmark"], s["id"]): s for s in rows} for name, rows in samples.items()}
    benchmarks = list(results[args.reference]["benchmarks"])

    head = ["model", *benchmarks, "prompt avg", "response avg", "refusal", "parse fail %", "mean tokens", "RQ",
            f"McNemar vs {args.reference}", f"Δ weighted F1 vs {args.reference} [95% CI], p"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = keyed[args.reference]
    for name, res in results.items():
        cells = [name]
        for b in benchmarks:
            m = res["benchmarks"][b]
            lo, hi = m.get("f1_ci") or (m["f1"], m["f1"])
            cells.append(f"{m['f1']:.1f} [{lo:.1f}, {hi:.1f}]")
        avg = res["averages"]
        cells += [f"{avg[t]['f1']:.1f}" if t in avg else "" for t in ("prompt", "response", "refusal")]
        n = sum(m["n"] for m in res["benchmarks"].values())
        fails = sum(m["parse_failures"] for m in res["benchmarks"].values())
        cells.append(f"{100 * fails / n:.1f}")
        lengths = [len(ids) for ids in tokenizer([s["output"] for s in samples[name]], add_special_tokens=False)["input_ids"]]
        cells.append(f"{sum(lengths) / len(lengths):.0f}")
        rq = res.get("reasoning_quality", {}).get("total")
        cells.append(f"{rq:.1f}" if rq is not None else "")
        if name == args.reference:
            cells += ["—", "—"]
        else:
            keys = [k for k in ref if k in keyed[name]]
            a_only, b_only, p = mcnemar([ref[k]["correct"] for k in keys], [keyed[name][k]["correct"] for k in keys])
            acc_ref = 100 * sum(ref[k]["correct"] for k in keys) / len(keys)
            acc = 100 * sum(keyed[name][k]["correct"] for k in keys) / len(keys)
            cells.append(f"acc {acc_ref:.1f}→{acc:.1f}, {a_only}/{b_only}, p={p:.2g}")
            d, (lo, hi), p = weighted_f1_delta(ref, keyed[name], benchmarks)
            cells.append(f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}], p={p:.2g}" if p else f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}], p<0.001")
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
