"""Averaging schemes for a row of per-benchmark F1 cells, named so that every table says which one it shows.

* ``weighted`` (GuardReasoner's): weighted by each benchmark's sample count. A measured cell brings its own n; a
  published cell has none, so it gets the size of the test set the paper scored (:data:`PAPER_SAMPLE_COUNTS`);
* ``mean``: the unweighted mean of the cells (the Qwen3Guard report's baseline "Avg.");
* ``published``: the average the paper printed, as printed (only published rows have one; GuardReasoner's is
  weighted over its 6 prompt / 5 response / 2 refusal sets, Qwen3Guard's an unweighted mean that includes sets
  we do not run and, for its own models, the better of strict/loose per benchmark). Measured rows get the
  ``weighted`` value here, marked.

Re-aggregating published per-benchmark numbers under ``weighted`` or ``mean`` is what ``--average`` is for: a
GuardReasoner row recomputed with ``weighted`` equals its printed average to 0.01 (tests/test_baselines.py).
"""

from __future__ import annotations

from collections.abc import Mapping

AVERAGES = ("weighted", "mean", "published")
AVERAGE_LABELS = {"weighted": "weighted avg", "mean": "mean", "published": "avg as published"}

# Sample counts GuardReasoner weighted by (MANIFEST of the published baselines, "Checks"): the record counts of its
# benchmark files; WildGuardTest prompt 1756 as stated; WildGuardTest response 1768 and refusal 1599 were *fitted*
# to the printed averages (they reproduce every row to <= 0.01), not read anywhere.
PAPER_SAMPLE_COUNTS = {
    "toxicchat": 2853, "openai_moderation": 1680, "aegis": 359, "simple_safety_tests": 100, "harmbench_prompt": 239,
    "wildguard_prompt": 1756,
    "harmbench_response": 602, "safe_rlhf": 2000, "beavertails": 3021, "xstest_response": 446,
    "wildguard_response": 1768,
    "xstest_refusal": 449, "wildguard_refusal": 1599,
}  # fmt: skip


def average(cells: Mapping[str, tuple[float, int | None]], scheme: str = "weighted") -> float | None:
    """Average of ``{benchmark: (f1, n)}`` under ``weighted`` or ``mean`` (``n=None``: the paper's sample count).

    >>> average({"aegis": (90.0, None), "simple_safety_tests": (100.0, None)}, "weighted")  # 359 and 100 samples
    92.17864923747277
    >>> average({"aegis": (90.0, 10), "simple_safety_tests": (100.0, 10)}, "mean")
    95.0
    """
    if scheme not in ("weighted", "mean"):
        raise ValueError(f"average must be weighted or mean here, got {scheme!r}")
    if not cells:
        return None
    if scheme == "mean":
        return sum(f1 for f1, _ in cells.values()) / len(cells)
    total = value = 0.0
    for name, (f1, n) in cells.items():
        w = n if n is not None else PAPER_SAMPLE_COUNTS.get(name)
        if w is None:
            raise ValueError(f"no sample count for {name!r}: its published cell cannot be weighted (use --average mean)")
        total += w
        value += w * f1
    return value / total if total else None
