"""Leaderboards and pairwise comparisons of guard checkpoints (the commands; runs, tables and renderers live in
:mod:`guard_eval.results`).

    runs = load_runs(["sft=runs/sft", "dpo=runs/dpo", "logs/"])      # results/readers.py
    table = build_table(runs)                                          # results/table.py
    print(render(table, "md"))                                         # results/renderers.py: md, csv, html, png
    print(compare.to_markdown(compare_runs(runs[0], runs[1])))         # compare.py

Command line: ``guard-eval leaderboard RUN... [--format md|csv|html|png] [--output FILE]`` and
``guard-eval compare A B`` (docs/leaderboard.md).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"Comparison": "guard_eval.leaderboard.compare", "compare_runs": "guard_eval.leaderboard.compare"}
__all__ = sorted(["Comparison", "compare_runs", "build_table", "load_path", "load_runs", "render", "Run",
                  "BenchmarkResult", "Outcome", "RunFormatError", "load_baseline", "FORMATS", "Table"])  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS.get(name, "guard_eval.results")), name)
