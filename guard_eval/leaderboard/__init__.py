"""Leaderboards and pairwise comparisons of guard checkpoints, from guard-eval, Inspect and lm-eval results.

    runs = load_runs(["sft=runs/sft", "dpo=runs/dpo", "logs/"])      # loaders.py
    table = build_table(runs)                                          # table.py
    print(render(table, "md"))                                         # renderers.py: md, csv, html, png
    print(compare.to_markdown(compare_runs(runs[0], runs[1])))         # compare.py

Command line: ``guard-eval leaderboard RUN... [--format md|csv|html|png] [--output FILE]`` and
``guard-eval compare A B`` (docs/leaderboard.md).
"""

from importlib import import_module
from typing import Any

# Lazy re-exports: the command plugin imports this package on every `guard-eval` call, and the metric code behind
# these names pulls in scikit-learn; load it only when a name is used.
_EXPORTS = {
    "Comparison": "compare", "compare_runs": "compare",
    "RunFormatError": "loaders", "load_baseline": "loaders", "load_path": "loaders", "load_runs": "loaders",
    "BenchmarkResult": "model", "Outcome": "model", "Run": "model",
    "FORMATS": "renderers", "render": "renderers",
    "Table": "table", "build_table": "table",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
