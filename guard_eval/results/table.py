"""The leaderboard table: rows = runs, columns = benchmarks grouped by task type, each group's weighted average, and
reasoning quality; the best value of each column marked. :mod:`guard_eval.results.renderers` only lays it out.

An average over fewer benchmarks than its group has (a run that skipped one) is computed over what the run has, marked
``partial`` and never marked best: it is not comparable with the full averages. A cell whose parse-failure rate is above
the threshold is flagged and never marked best either: its F1 measures the output format, not the judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from guard_eval.results.model import Run, weighted_f1_ci
from guard_eval.metrics import weighted_average
from guard_eval.verdict import TaskType



@dataclass(frozen=True)
class Column:
    key: str  # a benchmark name, "avg:<task>", "reasoning_quality", "contradiction_rate", "tokens", "seconds_per_1k"
    label: str
    group: str  # a task type value, "reasoning" or "cost"
    kind: str  # "benchmark", "average", "quality", "consistency" or "cost"

    @property
    def rankable(self) -> bool:
        """Higher is better: the best value is marked (consistency and cost columns are lower-is-better facts)."""
        return self.kind in ("benchmark", "average", "quality")


PARSE_FAILURE_THRESHOLD = 20.0  # percent of a cell's samples; above it the cell is flagged


@dataclass
class Cell:
    """One value of the table with what a reader needs to trust it; ``flags`` and ``extra`` let other metrics
    (consistency, cost, provenance) travel with a cell without changing the renderers' signature."""

    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    best: bool = False
    partial: bool = False
    parse_failure_rate: float | None = None  # percent
    flags: tuple[str, ...] = ()  # "parse_failures", ...: shown, and never marked best
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass
class Table:
    columns: list[Column]
    rows: list[tuple[Run, list[Cell]]]
    notes: list[str] = field(default_factory=list)

    def cell(self, run_name: str, column_key: str) -> Cell:
        keys = [c.key for c in self.columns]
        for run, cells in self.rows:
            if run.name == run_name:
                return cells[keys.index(column_key)]
        raise KeyError(f"no row {run_name!r}")


def _benchmark_order() -> dict[str, int]:
    from guard_eval import plugins

    return {name: i for i, name in enumerate(plugins.benchmarks())}


def _cell(value, ci, results, partial: bool = False, threshold: float = PARSE_FAILURE_THRESHOLD) -> Cell:
    n = sum(r.n for r in results)
    failures = [r.parse_failures for r in results]
    rate = 100.0 * sum(failures) / n if n and None not in failures else None
    flags = ("parse_failures",) if rate is not None and rate > threshold else ()
    return Cell(value, ci, n, partial=partial, parse_failure_rate=rate, flags=flags)


def _published(cell: Cell, provenance: dict | None, citations: dict[str, int]) -> Cell:
    """Mark a cell as a number a paper printed (or one recomputed from printed numbers) with its footnote."""
    if provenance and provenance.get("scoring"):  # measured, under another scoring rule
        cell.extra["scoring"] = provenance["scoring"]
    elif provenance:
        cell.extra["provenance"] = provenance
        cell.extra["footnote"] = citations.setdefault(provenance["citation"], len(citations) + 1)
        cell.n = cell.parse_failure_rate = None
        cell.flags = ()
    return cell


def _average_cell(run: Run, have: list, group_names: list[str], scheme: str, task: str, bootstrap: int, seed: int,
                  threshold: float, citations: dict[str, int]) -> Cell:  # fmt: skip
    from guard_eval.averaging import average

    partial = len(have) < len(group_names)
    if scheme == "published" and run.published:
        printed = run.meta.get("printed_averages", {}).get(task)
        if not printed:
            return Cell()
        return _published(Cell(printed["value"]), printed, citations)
    if run.published:
        cells = {r.name: (r.f1, r.n or None) for r in have}
        try:
            value = average(cells, "mean" if scheme == "mean" else "weighted")
        except ValueError:  # a published cell without a known sample count cannot be weighted
            return Cell(extra={"why": "no sample counts"})
        sources = {r.provenance["citation"] for r in have}
        prov = {"published": True, "citation": " / ".join(sorted(sources)), "recomputed": scheme,
                "note": f"{scheme} average recomputed here from the printed cells"}  # fmt: skip
        return _published(Cell(value, partial=partial), prov, citations)
    if scheme == "mean":
        value = sum(r.f1 for r in have) / len(have)
        return _cell(value, None, have, partial, threshold)
    value = weighted_average({r.name: {"n": r.n, "f1": r.f1} for r in have}, "f1")
    return _cell(value, weighted_f1_ci(have, bootstrap, seed=seed), have, partial, threshold)


def build_table(
    runs: Sequence[Run], bootstrap: int = 1000, seed: int = 0, parse_failure_threshold: float = PARSE_FAILURE_THRESHOLD,
    average: str = "weighted",
) -> Table:
    """``average``: ``weighted`` (by sample count, GuardReasoner's), ``mean`` (unweighted) or ``published`` (the
    average each paper printed, for published rows; measured rows are weighted): guard_eval.averaging."""
    from guard_eval.averaging import AVERAGE_LABELS, AVERAGES

    if average not in AVERAGES:
        raise ValueError(f"--average must be one of {', '.join(AVERAGES)}, got {average!r}")
    if not runs:
        raise ValueError("no runs to tabulate")
    order = _benchmark_order()
    tasks: dict[str, str] = {}
    for run in runs:
        for name, result in run.benchmarks.items():
            if tasks.setdefault(name, result.task) != result.task:
                raise ValueError(
                    f"benchmark {name!r} is a {tasks[name]} task in one run and {result.task} in {run.source}"
                )
    columns: list[Column] = []
    for task in TaskType:
        names = sorted((n for n, t in tasks.items() if t == task.value), key=lambda n: (order.get(n, len(order)), n))
        columns += [Column(n, n, task.value, "benchmark") for n in names]
        if len(names) > 1:
            columns.append(Column(f"avg:{task.value}", AVERAGE_LABELS[average], task.value, "average"))
    if any(run.reasoning_quality is not None for run in runs):
        columns.append(Column("reasoning_quality", "reasoning quality", "reasoning", "quality"))
    if any(r.consistency_checked for run in runs for r in run.benchmarks.values()):
        columns.append(Column("contradiction_rate", "contradictions %", "reasoning", "consistency"))
    if any(r.mean_output_tokens is not None for run in runs for r in run.benchmarks.values()):
        columns.append(Column("tokens", "tokens/verdict", "cost", "cost"))
    if any(run.seconds_per_1k is not None for run in runs):
        columns.append(Column("seconds_per_1k", "s/1k items", "cost", "cost"))
    citations: dict[str, int] = {}

    rows = []
    for run in runs:
        cells = []
        for col in columns:
            if col.kind == "benchmark":
                r = run.benchmarks.get(col.key)
                cell = _cell(r.f1, r.f1_ci, [r], threshold=parse_failure_threshold) if r else Cell()
                cells.append(_published(cell, r.provenance if r else None, citations))
            elif col.kind == "average":
                group_names = [c.key for c in columns if c.group == col.group and c.kind == "benchmark"]
                have = [run.benchmarks[n] for n in group_names if n in run.benchmarks]
                if not have:
                    cells.append(Cell())
                    continue
                cells.append(_average_cell(run, have, group_names, average, col.group, bootstrap, seed,
                                           parse_failure_threshold, citations))  # fmt: skip
            elif col.kind == "consistency":
                checked = [r for r in run.benchmarks.values() if r.consistency_checked]
                n = sum(r.consistency_checked for r in checked)
                value = sum(r.contradiction_rate * r.consistency_checked for r in checked) / n if n else None
                cells.append(Cell(value, n=n or None))
            elif col.key == "tokens":
                have = [r for r in run.benchmarks.values() if r.mean_output_tokens is not None]
                n = sum(r.n for r in have)
                cells.append(Cell(sum(r.mean_output_tokens * r.n for r in have) / n if n else None, n=n or None))
            elif col.key == "seconds_per_1k":
                cells.append(Cell(run.seconds_per_1k, extra={"device": run.device} if run.device else {}))
            else:
                cells.append(
                    Cell(run.reasoning_quality, run.reasoning_quality_ci, len(run.reasoning_scores or []) or None)
                )
        rows.append((run, cells))
    for j in range(len(columns)):
        if not columns[j].rankable:
            continue
        eligible = [c for _, cells in rows if (c := cells[j]).value is not None and not c.partial and not c.flagged]
        if len(eligible) > 1:
            top = max(c.value for c in eligible)
            for c in eligible:
                c.best = abs(c.value - top) < 1e-9
    notes = ["F1 x100 (positive class: harmful; refusal for refusal tasks); [low, high] = 95% bootstrap interval; "
             "n = samples; pf = parse failures"]
    if any(c.partial for _, cells in rows for c in cells):
        notes.append("* average over only the benchmarks that run has: not comparable, never marked best")
    if any(c.flagged for _, cells in rows for c in cells):
        notes.append(f"! more than {parse_failure_threshold:g}% of the outputs did not parse: the F1 measures the output "
                     "format, not the judgement; never marked best")
    if any(col.kind == "quality" for col in columns):
        judges = sorted(
            {
                str(run.meta.get("judge") or "reasoning_quality scorer")
                for run, _ in rows
                if run.reasoning_quality is not None
            }
        )
        notes.append(f"reasoning quality: mean judge score 0-100 ({', '.join(judges)}; docs/judging.md)")
    if any(col.kind == "consistency" for col in columns):
        notes.append("contradictions %: share of traces with an explicit in-reasoning conclusion that the final Answers "
                     "block contradicts (n = traces with such a conclusion; guard_eval/consistency.py)")  # fmt: skip
    if any(col.kind == "cost" for col in columns):
        devices = sorted({run.device for run in runs if run.device and run.seconds_per_1k is not None})
        notes.append("tokens/verdict: mean generated tokens per output; s/1k items: measured generation seconds per "
                     f"1000 items" + (f" (device: {', '.join(devices)})" if devices else ""))  # fmt: skip
    if any(col.kind == "average" for col in columns):
        notes.append({"weighted": "averages weighted by sample count (GuardReasoner's scheme; published cells weighted "
                                  "by the test-set sizes the paper used)",
                      "mean": "averages are unweighted means of the benchmark cells",
                      "published": "averages as each paper printed them (published rows); measured rows weighted by "
                                   "sample count"}[average])  # fmt: skip
    if any(c.extra.get("why") == "no sample counts" for _, cells in rows for c in cells):
        notes.append("– as the weighted average of a published row: the paper does not give the sample count of some "
                     "of its cells (use --average mean or published)")  # fmt: skip
    for citation, k in citations.items():
        notes.append(f"[{k}] published, not measured here: {citation}")
    return Table(columns, rows, notes)
