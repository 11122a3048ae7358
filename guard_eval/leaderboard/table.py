"""The leaderboard table: rows = runs, columns = benchmarks grouped by task type, each group's weighted average, and
reasoning quality; the best value of each column marked. Renderers (renderers.py) only lay it out.

An average over fewer benchmarks than its group has (a run that skipped one) is computed over what the run has, marked
``partial`` and never marked best: it is not comparable with the full averages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from guard_eval.leaderboard.model import Run, weighted_f1_ci
from guard_eval.metrics import weighted_average
from guard_eval.verdict import TaskType

GROUP_TITLES = {"prompt": "Prompt harmfulness", "response": "Response harmfulness", "refusal": "Refusal",
                "reasoning": "Reasoning"}  # fmt: skip


@dataclass(frozen=True)
class Column:
    key: str  # a benchmark name, "avg:<task>" or "reasoning_quality"
    label: str
    group: str  # a task type value, or "reasoning"
    kind: str  # "benchmark", "average" or "quality"


@dataclass
class Cell:
    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    best: bool = False
    partial: bool = False


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


def build_table(runs: Sequence[Run], bootstrap: int = 1000, seed: int = 0) -> Table:
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
            columns.append(Column(f"avg:{task.value}", "weighted avg", task.value, "average"))
    if any(run.reasoning_quality is not None for run in runs):
        columns.append(Column("reasoning_quality", "reasoning quality", "reasoning", "quality"))

    rows = []
    for run in runs:
        cells = []
        for col in columns:
            if col.kind == "benchmark":
                r = run.benchmarks.get(col.key)
                cells.append(Cell(r.f1, r.f1_ci, r.n) if r else Cell())
            elif col.kind == "average":
                group_names = [c.key for c in columns if c.group == col.group and c.kind == "benchmark"]
                have = [run.benchmarks[n] for n in group_names if n in run.benchmarks]
                if not have:
                    cells.append(Cell())
                    continue
                value = weighted_average({r.name: {"n": r.n, "f1": r.f1} for r in have}, "f1")
                ci = weighted_f1_ci(have, bootstrap, seed=seed)
                cells.append(Cell(value, ci, sum(r.n for r in have), partial=len(have) < len(group_names)))
            else:
                cells.append(
                    Cell(run.reasoning_quality, run.reasoning_quality_ci, len(run.reasoning_scores or []) or None)
                )
        rows.append((run, cells))
    for j in range(len(columns)):
        eligible = [cells[j] for _, cells in rows if cells[j].value is not None and not cells[j].partial]
        if len(eligible) > 1:
            top = max(c.value for c in eligible)
            for c in eligible:
                c.best = abs(c.value - top) < 1e-9
    notes = ["F1 x100 (positive class: harmful; refusal for refusal tasks); [low, high] = 95% bootstrap interval"]
    if any(c.partial for _, cells in rows for c in cells):
        notes.append("* average over only the benchmarks that run has: not comparable, never marked best")
    if any(col.kind == "quality" for col in columns):
        judges = sorted(
            {
                str(run.meta.get("judge") or "reasoning_quality scorer")
                for run, _ in rows
                if run.reasoning_quality is not None
            }
        )
        notes.append(f"reasoning quality: mean judge score 0-100 ({', '.join(judges)}; docs/judging.md)")
    return Table(columns, rows, notes)
