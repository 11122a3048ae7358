"""``guard-eval compare A B``: is B better than A, benchmark by benchmark, beyond sampling noise?

Samples are paired by id (both runs must have evaluated the same items; unmatched ones are left out and counted).
Two tests on the paired samples:

* paired bootstrap of ΔF1 = F1(B) - F1(A): the same resampled indices for both runs, a percentile interval and a
  two-sided p-value (twice the share of resampled deltas on the far side of 0);
* McNemar's exact test on per-sample correctness: ``b`` = A right and B wrong, ``c`` = A wrong and B right,
  p = two-sided binomial test of min(b, c) in b + c trials at 1/2. It tests accuracy, not F1, and needs no resampling.

The disagreements (samples where the two labels differ, a parse failure counting as a label) are listed for reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from guard_eval.metrics import f1_resamples, percentile_ci
from guard_eval.results.model import BenchmarkResult, Run


@dataclass
class BenchmarkComparison:
    benchmark: str
    task: str
    n_paired: int
    unpaired: int  # samples present in only one of the runs
    f1_a: float
    f1_b: float
    delta_ci: tuple[float, float] | None = None
    p_bootstrap: float | None = None
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    only_a_right: int | None = None  # McNemar b
    only_b_right: int | None = None  # McNemar c
    p_mcnemar: float | None = None

    @property
    def delta(self) -> float:
        return self.f1_b - self.f1_a


@dataclass
class Comparison:
    a: Run
    b: Run
    rows: list[BenchmarkComparison]
    pooled: BenchmarkComparison | None  # McNemar over all paired samples of all benchmarks
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    >>> round(mcnemar_exact(10, 2), 4)
    0.0386
    >>> mcnemar_exact(0, 0)
    1.0
    """
    from scipy.stats import binomtest

    n = only_a_right + only_b_right
    return 1.0 if n == 0 else float(binomtest(min(only_a_right, only_b_right), n, 0.5).pvalue)


def paired_bootstrap(
    a: BenchmarkResult, b: BenchmarkResult, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
):
    """(ΔF1 interval, two-sided p) from resampling the paired samples; both results must be aligned already."""
    ta, pa = a.arrays()
    tb, pb = b.arrays()
    idx = np.random.default_rng(seed).integers(0, len(ta), size=(resamples, len(ta)))
    deltas = f1_resamples(tb, pb, idx) - f1_resamples(ta, pa, idx)
    p = min(1.0, 2 * min(float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0))))
    return percentile_ci(deltas, confidence), p


def _aligned(a: BenchmarkResult, b: BenchmarkResult) -> tuple[BenchmarkResult, BenchmarkResult, int]:
    by_key = {o.key: o for o in b.outcomes}
    keys = [o.key for o in a.outcomes if o.key in by_key]
    a_by_key = {o.key: o for o in a.outcomes}
    for key in keys:
        if a_by_key[key].gold != by_key[key].gold:
            raise ValueError(f"{a.name}: sample {key!r} has gold {a_by_key[key].gold!r} in one run and "
                             f"{by_key[key].gold!r} in the other: the runs used different data")  # fmt: skip
    unpaired = len(a.outcomes) + len(b.outcomes) - 2 * len(keys)
    pa = BenchmarkResult.from_outcomes(a.name, a.task, [a_by_key[k] for k in keys], bootstrap=0)
    pb = BenchmarkResult.from_outcomes(b.name, b.task, [by_key[k] for k in keys], bootstrap=0)
    return pa, pb, unpaired


def compare_runs(a: Run, b: Run, resamples: int = 1000, seed: int = 0) -> Comparison:
    common = [name for name in a.benchmarks if name in b.benchmarks]
    if not common:
        raise ValueError(
            f"{a.name!r} and {b.name!r} share no benchmark ({sorted(a.benchmarks)} vs {sorted(b.benchmarks)})"
        )
    rows, notes, disagreements = [], [], []
    pooled_b = pooled_c = pooled_n = pooled_right_a = pooled_right_b = 0
    for name in common:
        ra, rb = a.benchmarks[name], b.benchmarks[name]
        if ra.outcomes is None or rb.outcomes is None:
            rows.append(
                BenchmarkComparison(name, ra.task, 0, 0, ra.f1, rb.f1, accuracy_a=ra.accuracy, accuracy_b=rb.accuracy)
            )
            notes.append(f"{name}: no per-sample data in both runs, so no significance test and no disagreements")
            continue
        pa, pb, unpaired = _aligned(ra, rb)
        if not pa.n:
            raise ValueError(
                f"{name}: no sample id is shared by the two runs (ids like {ra.outcomes[0].key!r} vs {rb.outcomes[0].key!r})"
            )
        ci, p_boot = paired_bootstrap(pa, pb, resamples, seed=seed)
        only_a = sum(x.correct and not y.correct for x, y in zip(pa.outcomes, pb.outcomes))
        only_b = sum(y.correct and not x.correct for x, y in zip(pa.outcomes, pb.outcomes))
        rows.append(BenchmarkComparison(name, ra.task, pa.n, unpaired, pa.f1, pb.f1, ci, p_boot, pa.accuracy, pb.accuracy,
                                        only_a, only_b, mcnemar_exact(only_a, only_b)))  # fmt: skip
        if unpaired:
            notes.append(f"{name}: {unpaired} samples are in only one run and are left out")
        pooled_b, pooled_c, pooled_n = pooled_b + only_a, pooled_c + only_b, pooled_n + pa.n
        pooled_right_a += sum(o.correct for o in pa.outcomes)
        pooled_right_b += sum(o.correct for o in pb.outcomes)
        for x, y in zip(pa.outcomes, pb.outcomes):
            if x.pred != y.pred:
                disagreements.append({
                    "benchmark": name, "id": x.key, "gold": x.gold, "pred_a": x.pred, "pred_b": y.pred,
                    "right": "a" if x.correct else "b" if y.correct else "neither",
                    "prompt": x.prompt or y.prompt, "output_a": x.output, "output_b": y.output,
                })  # fmt: skip
    pooled = None
    if pooled_n:
        acc = lambda k: 100.0 * k / pooled_n  # noqa: E731
        pooled = BenchmarkComparison("all (pooled)", "", pooled_n, 0, float("nan"), float("nan"),
                                     accuracy_a=acc(pooled_right_a), accuracy_b=acc(pooled_right_b),
                                     only_a_right=pooled_b, only_b_right=pooled_c,
                                     p_mcnemar=mcnemar_exact(pooled_b, pooled_c))  # fmt: skip
    return Comparison(a, b, rows, pooled, disagreements, notes)


def table_rows(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table, for :mod:`guard_eval.results.renderers`."""
    f = lambda x, d=1: "–" if x is None or x != x else f"{x:.{d}f}"  # noqa: E731
    p = lambda x: "–" if x is None else ("<0.001" if x < 0.001 else f"{x:.3f}")  # noqa: E731
    header = ["benchmark", "n", "F1 A", "F1 B", "ΔF1", "95% CI", "p (bootstrap)", "acc A", "acc B", "A-only right",
              "B-only right", "p (McNemar)"]  # fmt: skip
    rows = []
    for r in [*cmp.rows, *([cmp.pooled] if cmp.pooled else [])]:
        pooled = r is cmp.pooled
        rows.append([
            r.benchmark, str(r.n_paired or "–"), "" if pooled else f(r.f1_a), "" if pooled else f(r.f1_b),
            "" if pooled else f"{r.delta:+.1f}", f"[{r.delta_ci[0]:+.1f}, {r.delta_ci[1]:+.1f}]" if r.delta_ci else "",
            p(r.p_bootstrap) if not pooled else "", f(r.accuracy_a), f(r.accuracy_b),
            str(r.only_a_right) if r.only_a_right is not None else "–",
            str(r.only_b_right) if r.only_b_right is not None else "–", p(r.p_mcnemar),
        ])  # fmt: skip
    return header, rows


def to_markdown(cmp: Comparison, show: int = 10) -> str:
    from guard_eval.results.renderers import markdown_table

    header, rows = table_rows(cmp)
    out = [f"A = {cmp.a.name} ({cmp.a.source})", f"B = {cmp.b.name} ({cmp.b.source})", "",
           markdown_table(header, rows), ""]  # fmt: skip
    out += [f"_{n}_" for n in cmp.notes]
    if cmp.disagreements:
        out += [
            "",
            f"{len(cmp.disagreements)} disagreements" + (f" (first {show}):" if len(cmp.disagreements) > show else ":"),
        ]
        for d in cmp.disagreements[:show]:
            prompt = " ".join((d["prompt"] or "").split())
            prompt = prompt if len(prompt) <= 100 else prompt[:97] + "..."
            out.append(f"- {d['benchmark']} {d['id']}: gold {d['gold']}, A {d['pred_a']}, B {d['pred_b']} "
                       f"(right: {d['right']}) — {prompt}")  # fmt: skip
    return "\n".join(out) + "\n"
