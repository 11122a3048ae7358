"""The honest check of a judge on the released GuardReasoner traces (docs/judging.md reports its numbers).

Two properties a useful judge must have, measured rather than assumed:

1. traces whose answer is right score higher than traces whose answer is wrong, on the total *and* on the
   components that do not look at the gold label (coherence, relevance, specificity: otherwise the check is
   circular, since correctness alone separates the groups);
2. a shuffled trace (the output written for another prompt of the same benchmark) scores lower on relevance.

    python -m guard_eval.judging.validate [--data-dir DIR] [--judge heuristic] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guard_eval.judging import JudgeInput, JudgeScore, get_judge
from guard_eval.judging.rubric import MODEL_COMPONENTS
from guard_eval.results.readers import load_reference_traces
from guard_eval.results.renderers import markdown_table



def shuffled(items: Sequence[JudgeInput], seed: int = 0) -> list[JudgeInput]:
    """Each input paired with the output of a different sample (a random derangement)."""
    n = len(items)
    if n < 2:
        return []
    order = list(range(n))
    random.Random(seed).shuffle(order)
    donor = {order[i]: order[(i + 1) % n] for i in range(n)}  # a cycle: nobody keeps their own output
    return [JudgeInput(it.prompt, it.response, items[donor[i]].output, it.task, it.gold) for i, it in enumerate(items)]


def _values(scores: Sequence[JudgeScore], key: str) -> list[float]:
    """``key`` of each score the judge could produce; ``gold_free`` is the mean of the model-scored components."""
    ok = [s for s in scores if s.error is None]
    return [sum(getattr(s, k) for k in MODEL_COMPONENTS) / 3 if key == "gold_free" else getattr(s, key) for s in ok]


def _mean(scores: Sequence[JudgeScore], key: str) -> float | None:
    values = _values(scores, key)
    return sum(values) / len(values) if values else None


def _auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """Probability that a random right trace outscores a random wrong one (ties count half): the Mann-Whitney AUC."""
    if not pos or not neg:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def check(
    data_dir: str | Path | None = None, judge: str = "heuristic", models=("1B", "3B"), limit=None, seed=0
) -> dict:
    """The numbers of the honest check, per released model and benchmark."""
    scorer = get_judge(judge)
    report: dict[str, Any] = {"judge": judge, "models": {}}
    for model in models:
        rows = []
        all_right, all_wrong, all_real, all_shuf = [], [], [], []
        start = time.perf_counter()
        for bench, items in load_reference_traces(data_dir, model, limit).items():
            scores = scorer.score(items)
            shuf = scorer.score(shuffled(items, seed))
            right = [s for s in scores if s.correctness == 100]
            wrong = [s for s in scores if s.correctness != 100]
            all_right += right
            all_wrong += wrong
            all_real += scores[: len(shuf)]
            all_shuf += shuf
            rows.append(_row(bench, right, wrong, scores, shuf))
        elapsed = time.perf_counter() - start
        report["models"][model] = {
            "benchmarks": rows,
            "all": _row("all", all_right, all_wrong, all_real, all_shuf),
            "traces_per_second": (len(all_right) + len(all_wrong) + len(all_shuf)) / elapsed,
        }
    return report


def _row(name, right, wrong, scores, shuf) -> dict[str, Any]:
    row: dict[str, Any] = {"benchmark": name, "n_right": len(right), "n_wrong": len(wrong)}
    for key in ("total", "gold_free", *MODEL_COMPONENTS):
        row[key] = {
            "right": _mean(right, key),
            "wrong": _mean(wrong, key),
            "auc": _auc(_values(right, key), _values(wrong, key)),
        }
    row["relevance_real"] = _mean(scores, "relevance")
    row["relevance_shuffled"] = _mean(shuf, "relevance")
    row["shuffled_lower"] = sum(a.relevance > b.relevance for a, b in zip(scores, shuf)) / len(shuf) if shuf else None
    return row


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables of :func:`check`'s numbers, as pasted into docs/judging.md."""
    f = lambda x, scale=1: "–" if x is None else f"{x * scale:.1f}"  # noqa: E731
    lines = []
    for model, data in report["models"].items():
        rows = [*data["benchmarks"], data["all"]]
        lines += [
            f"#### GuardReasoner-{model} traces ({report['judge']} judge, {data['traces_per_second']:.0f} traces/s on one CPU core)",
            "",
        ]  # fmt: skip
        header = ["benchmark", "right / wrong", "total: right / wrong", "gold-free: right / wrong (AUC)",
                  "coherence (AUC)", "relevance (AUC)", "specificity (AUC)", "relevance: real / shuffled (shuffled lower)"]
        table = []
        for r in rows:
            b = f"**{r['benchmark']}**" if r["benchmark"] == "all" else r["benchmark"]
            cells = [b, f"{r['n_right']} / {r['n_wrong']}", f"{f(r['total']['right'])} / {f(r['total']['wrong'])}"]
            for key in ("gold_free", *MODEL_COMPONENTS):
                c = r[key]
                cells.append(f"{f(c['right'])} / {f(c['wrong'])} ({f(c['auc'], 100)})")
            cells.append(f"{f(r['relevance_real'])} / {f(r['relevance_shuffled'])} ({f(r['shuffled_lower'], 100)}%)")
            table.append(cells)
        lines += [markdown_table(header, table), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guard_eval.judging.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir")
    p.add_argument("--judge", default="heuristic")
    p.add_argument("--limit", type=int, help="at most N traces per benchmark")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)
    report = check(args.data_dir, args.judge, limit=args.limit)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
