"""A run and everything that reads or writes one: the single owner of results.

    rundir.py   the run directory (results.json + samples.jsonl): read, atomic write, summarize, merge, set aside
    model.py    Run / BenchmarkResult / Outcome: what every source becomes
    readers.py  one reader per source: guard-eval run dir, Inspect logs, lm-eval results, published baselines
    table.py    runs -> a leaderboard Table of Cells (value, CI, n, parse-failure rate, flags)
    renderers.py the one renderer: plain rows and Tables as Markdown / HTML / CSV / PNG

Data flows one way: score -> Run -> report (ARCHITECTURE.md).
"""

from importlib import import_module
from typing import Any

# Lazy re-exports: metric code behind these names pulls in scikit-learn; load it only when a name is used.
_EXPORTS = {
    "RESULTS_FILE": "rundir", "SAMPLES_FILE": "rundir", "read_records": "rundir", "summarize": "rundir",
    "merge_runs": "rundir", "write_json_atomic": "rundir", "RunDirError": "rundir",
    "BenchmarkResult": "model", "Outcome": "model", "Run": "model",
    "RunFormatError": "readers", "load_baseline": "readers", "load_path": "readers", "load_runs": "readers",
    "load_inspect_logs": "readers",
    "Cell": "table", "Table": "table", "build_table": "table",
    "FORMATS": "renderers", "render": "renderers", "markdown_table": "renderers", "html_table": "renderers",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
