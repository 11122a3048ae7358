"""Leaderboards and pairwise comparisons of guard checkpoints, from guard-eval, Inspect and lm-eval results.

    runs = load_runs(["sft=runs/sft", "dpo=runs/dpo", "logs/"])      # loaders.py
    table = build_table(runs)                                          # table.py
    print(render(table, "md"))                                         # render.py: md, csv, html, png
    print(compare.to_markdown(compare_runs(runs[0], runs[1])))         # compare.py

Command line: ``guard-eval leaderboard RUN... [--format md|csv|html|png] [--output FILE]`` and
``guard-eval compare A B`` (docs/leaderboard.md).
"""

from guard_eval.leaderboard.compare import Comparison, compare_runs
from guard_eval.leaderboard.loaders import RunFormatError, load_baseline, load_path, load_runs
from guard_eval.leaderboard.model import BenchmarkResult, Outcome, Run
from guard_eval.leaderboard.render import FORMATS, render
from guard_eval.leaderboard.table import Table, build_table

__all__ = [
    "FORMATS", "BenchmarkResult", "Comparison", "Outcome", "Run", "RunFormatError", "Table", "build_table",
    "compare_runs", "load_baseline", "load_path", "load_runs", "render",
]  # fmt: skip
