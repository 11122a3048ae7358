"""Win rates with confidence intervals and inter-annotator agreement for a human A/B study.

Every answer (one annotator, one item) counts once. Rates are percentages of all answers to a question, ties
included, with 95% Wilson score intervals; ``b_decisive_pct`` leaves ties out. Several annotators rating the same item
are not independent draws, so with many annotators per item the Wilson interval is optimistic; agreement tells how
much they overlap. Agreement is Cohen's kappa with two annotators (items both answered) and Fleiss' kappa with more
(items every annotator answered), over the three categories a / b / tie.

The JSON summary (``guard-eval human-eval report DB --json OUT``; docs/human-eval.md has a full example) is what the
leaderboard and the experiment read::

    {"schema": "guard-bench/human-eval/v1", "a": NAME_A, "b": NAME_B, "items": N, "answers": N,
     "annotators": {NAME: N},
     "questions": {
        "production": {"text": ..., "n": N, "a": N, "b": N, "tie": N,
                       "a_pct": PCT, "a_ci": [LO, HI], "b_pct": ..., "b_ci": ..., "tie_pct": ..., "tie_ci": ...,
                       "b_decisive_pct": PCT, "b_decisive_ci": [LO, HI], "trace1_pct": PCT,
                       "agreement": {"method": "cohen" | "fleiss" | null, "kappa": K | null, "items": N,
                                     "annotators": N}},
        "coherent": ..., "specific": ..., "helpful": ...}}
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guard_eval.human_eval.db import QUESTIONS, STORED_CHOICES, StudyDB, to_shown

SCHEMA = "guard-bench/human-eval/v1"


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95% Wilson score interval of the proportion k/n, in percent; ``None`` for n = 0.

    Unlike the normal approximation it stays inside [0, 100] and is sensible at 0/n and n/n.

    >>> [round(x, 1) for x in wilson_interval(6, 10)]
    [31.3, 83.2]
    >>> wilson_interval(0, 0) is None
    True
    """
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


def cohen_kappa(r1: Sequence[str], r2: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items; ``None`` when chance agreement is 1 (one category only).

    >>> round(cohen_kappa("aabbt", "aabtt"), 3)
    0.706
    """
    n = len(r1)
    if n != len(r2):
        raise ValueError(f"raters rated different numbers of items ({n} vs {len(r2)})")
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(r1, r2)) / n
    c1, c2 = Counter(r1), Counter(r2)
    expected = sum(c1[c] * c2[c] for c in c1) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories matrix of rating counts (every item rated by the same number of
    raters); ``None`` when undefined (no items, one rater, or one category only).

    The example of Fleiss (1971) as given on Wikipedia: 10 items, 14 raters, 5 categories.

    >>> table = [[0,0,0,0,14], [0,2,6,4,2], [0,0,3,5,6], [0,3,9,2,0], [2,2,8,1,1],
    ...          [7,7,0,0,0], [3,2,6,3,0], [2,5,3,2,2], [6,5,2,1,0], [0,2,2,3,7]]
    >>> round(fleiss_kappa(table), 3)
    0.21
    """
    if not counts:
        return None
    raters = sum(counts[0])
    if raters < 2 or any(sum(row) != raters for row in counts):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n_items = len(counts)
    totals = [sum(col) for col in zip(*counts)]
    p_j = [t / (n_items * raters) for t in totals]
    p_bar = sum((sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in counts) / n_items
    p_e = sum(p * p for p in p_j)
    return None if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def agreement(answers: Sequence[dict[str, Any]], question: str) -> dict[str, Any]:
    """Kappa over the annotators who answered anything: Cohen's for two, Fleiss' for more."""
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for ans in answers:
        by_item[ans["item_id"]][ans["annotator"]] = ans[question]
    raters = sorted({ans["annotator"] for ans in answers})
    shared = [ratings for ratings in by_item.values() if len(ratings) == len(raters)]
    out: dict[str, Any] = {"method": None, "kappa": None, "items": len(shared), "annotators": len(raters)}
    if len(raters) < 2 or not shared:
        return out
    if len(raters) == 2:
        out["method"] = "cohen"
        out["kappa"] = cohen_kappa([r[raters[0]] for r in shared], [r[raters[1]] for r in shared])
    else:
        out["method"] = "fleiss"
        out["kappa"] = fleiss_kappa([[list(r.values()).count(c) for c in STORED_CHOICES] for r in shared])
    return out


def question_summary(answers: Sequence[dict[str, Any]], question: str) -> dict[str, Any]:
    counts = Counter(ans[question] for ans in answers)
    n = len(answers)
    out: dict[str, Any] = {"text": QUESTIONS[question], "n": n, **{c: counts[c] for c in STORED_CHOICES}}
    for c in STORED_CHOICES:
        out[f"{c}_pct"] = 100 * counts[c] / n if n else None
        out[f"{c}_ci"] = wilson_interval(counts[c], n)
    decisive = counts["a"] + counts["b"]
    out["b_decisive_pct"] = 100 * counts["b"] / decisive if decisive else None
    out["b_decisive_ci"] = wilson_interval(counts["b"], decisive)
    # Position bias check: how often the decisive answer was whichever trace was shown first.
    first = sum(to_shown(ans[question], bool(ans["swapped"])) == "1" for ans in answers if ans[question] != "tie")
    out["trace1_pct"] = 100 * first / decisive if decisive else None
    out["agreement"] = agreement(answers, question)
    return out


def summarize(db_path: str | Path) -> dict[str, Any]:
    with StudyDB(db_path) as db:
        answers = db.answers()
        study = db.study
        annotators = {a.name: 0 for a in db.annotators()}
    for ans in answers:
        annotators[ans["annotator"]] += 1
    return {
        "schema": SCHEMA,
        "a": study.name_a,
        "b": study.name_b,
        "source_a": study.source_a,
        "source_b": study.source_b,
        "db": str(db_path),
        "items": study.n_items,
        "answers": len(answers),
        "annotators": annotators,
        "questions": {q: question_summary(answers, q) for q in QUESTIONS},
    }


def load_summary(path: str | Path) -> dict[str, Any]:
    """A summary from a study database or from the JSON that ``report --json`` wrote."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable human-eval summary ({e})") from e
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a human-eval summary (expected schema {SCHEMA!r})")
        return data
    return summarize(path)


def preference_summary(path: str | Path, question: str = "production", side: str = "b") -> float:
    """Percent of answers preferring ``side`` (ties count as not preferring); by convention B is the trained model.

    This is the number the plan's criterion "humans prefer the trained model in > 60% of cases" is checked on.
    """
    if question not in QUESTIONS or side not in ("a", "b"):
        raise ValueError(f"question must be one of {', '.join(QUESTIONS)} and side a or b; got {question!r}, {side!r}")
    q = load_summary(path)["questions"][question]
    if not q["n"]:
        raise ValueError(f"{path}: no answers yet to {question!r}")
    return q[f"{side}_pct"]


def preference_by_model(path: str | Path, question: str = "production") -> dict[str, dict[str, Any]]:
    """``{model name: {"win_pct", "win_ci", "tie_pct", "n", "vs"}}``: one entry per side, the shape a leaderboard
    column or a compare report needs."""
    summary = load_summary(path)
    q = summary["questions"][question]
    return {
        summary[side]: {"win_pct": q[f"{side}_pct"], "win_ci": q[f"{side}_ci"], "tie_pct": q["tie_pct"], "n": q["n"],
                        "vs": summary[other]}
        for side, other in (("a", "b"), ("b", "a"))
    }  # fmt: skip


def _pct(value: float | None, ci: Sequence[float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def to_markdown(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{k}: {v}" for k, v in summary["annotators"].items()) or "none"
    header = ["question", "n", "B wins % [95% CI]", "A wins % [95% CI]", "ties %", "B of decisive % [95% CI]",
              "trace 1 picked %", "agreement"]  # fmt: skip
    from guard_eval.results.renderers import markdown_table

    rows = []
    for key, q in summary["questions"].items():
        ag = q["agreement"]
        kappa = f"{ag['method']} kappa {ag['kappa']:.2f} ({ag['items']} items)" if ag["kappa"] is not None else "-"
        rows.append([key, q["n"], _pct(q["b_pct"], q["b_ci"]), _pct(q["a_pct"], q["a_ci"]), _pct(q["tie_pct"]),
                     _pct(q["b_decisive_pct"], q["b_decisive_ci"]), _pct(q["trace1_pct"]), kappa])  # fmt: skip
    return (f"Human A/B study: A = {summary['a']}, B = {summary['b']}; {summary['answers']} answers on "
            f"{summary['items']} items by {len(summary['annotators'])} annotators ({counts})\n\n"
            + markdown_table(header, rows) + "\n")  # fmt: skip
