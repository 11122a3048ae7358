"""What the leaderboard works on, whatever produced it: runs of checkpoints, their per-benchmark results, the samples.

Every loader (guard-eval results, Inspect logs, lm-eval results, stored baselines) builds these objects; the table,
the renderers and ``compare`` only read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from guard_eval.metrics import binary_metrics, f1_resamples, percentile_ci
from guard_eval.verdict import TaskType


@dataclass(frozen=True)
class Outcome:
    """One judged sample: the key pairs it with the same sample of another run (id, plus the draw for k > 1)."""

    key: str
    gold: str
    pred: str | None  # None: the model's answer did not parse (scored as wrong)
    prompt: str | None = None
    output: str | None = None  # the model's full trace, when the source keeps it
    response: str | None = None  # the AI response that was classified (response and refusal tasks)
    output_tokens: int | None = None  # generated tokens, when the source counted them

    @property
    def correct(self) -> bool:
        return self.pred == self.gold


@dataclass
class BenchmarkResult:
    name: str
    task: str
    n: int
    f1: float
    f1_ci: tuple[float, float] | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    parse_failures: int | None = None
    outcomes: list[Outcome] | None = None  # per-sample data when the source has it
    # Where the number comes from: None = measured here (from the run's samples or stored metrics); a published
    # cell carries {"published": True, "citation", "source", "table", "note", "printed"} (guard_eval.baselines).
    provenance: dict[str, Any] | None = None
    contradiction_rate: float | None = None  # % of checked traces whose reasoning contradicts the Answers block
    consistency_checked: int | None = None
    mean_output_tokens: float | None = None

    @property
    def published(self) -> bool:
        return bool(self.provenance and self.provenance.get("published"))

    @classmethod
    def from_outcomes(
        cls, name: str, task: str, outcomes: list[Outcome], bootstrap: int = 1000, seed: int = 0
    ) -> BenchmarkResult:
        """Metrics recomputed with the shared metric code, so every source gets the same F1 and bootstrap CI."""
        from guard_eval.consistency import contradicts
        from guard_eval.metrics import consistency_metrics

        m = binary_metrics([o.gold for o in outcomes], [o.pred for o in outcomes], task, bootstrap=bootstrap, seed=seed)
        result = cls(name, task, m.n, m.f1, m.f1_ci, m.accuracy, m.precision, m.recall, m.parse_failures, outcomes)
        if any(o.output is not None for o in outcomes):
            c = consistency_metrics([contradicts(o.output) if o.output is not None else None for o in outcomes])
            result.contradiction_rate, result.consistency_checked = c["contradiction_rate"], c["consistency_checked"]
        tokens = [o.output_tokens for o in outcomes if o.output_tokens is not None]
        if tokens:
            result.mean_output_tokens = sum(tokens) / len(tokens)
        return result

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(gold positive, predicted positive) booleans; an unparsed prediction is the opposite of gold."""
        from guard_eval.metrics import resolve_predictions

        if self.outcomes is None:
            raise ValueError(f"benchmark {self.name!r} has no per-sample data")
        gold = [o.gold for o in self.outcomes]
        positive = TaskType(self.task).positive
        return np.array([g == positive for g in gold]), resolve_predictions(
            gold, [o.pred for o in self.outcomes], self.task
        )


@dataclass
class Run:
    """One checkpoint's results: a row of the leaderboard."""

    name: str
    source: str  # the file or folder it was read from
    kind: str  # "guard-eval", "inspect", "lm-eval", "baseline" or "published"
    benchmarks: dict[str, BenchmarkResult] = field(default_factory=dict)
    reasoning_quality: float | None = None  # mean judge total (0-100)
    reasoning_quality_ci: tuple[float, float] | None = None
    reasoning_scores: list[float] | None = None  # per-sample judge totals, for the CI
    meta: dict[str, Any] = field(default_factory=dict)  # published rows: "printed_averages" {task: provenance}
    seconds_per_1k: float | None = None  # measured generation time per 1000 items
    device: str | None = None  # what generated them ("NVIDIA H200", "cpu", "API: openai/gpt-4o-mini")

    @property
    def published(self) -> bool:
        return self.kind == "published"


# ---------------------------------------------------------------------------------------------------------------------
# Bootstrap helpers (percentile intervals, like guard_eval.metrics)
# ---------------------------------------------------------------------------------------------------------------------


def mean_ci(values: Sequence[float], resamples: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Percentile bootstrap interval of a mean; ``None`` for fewer than two values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or resamples <= 0:
        return None
    idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    return percentile_ci(x[idx].mean(1), confidence)


def weighted_f1_ci(results: Sequence[BenchmarkResult], resamples: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Bootstrap interval of the sample-weighted average F1: each benchmark resampled on its own, then averaged with
    the same weights as the point estimate. ``None`` when a benchmark lacks per-sample data."""
    if not results or any(r.outcomes is None for r in results) or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    total = sum(r.n for r in results)
    acc = np.zeros(resamples)
    for r in results:
        y_true, y_pred = r.arrays()
        acc += r.n / total * f1_resamples(y_true, y_pred, rng.integers(0, r.n, size=(resamples, r.n)))
    return percentile_ci(acc, confidence)
