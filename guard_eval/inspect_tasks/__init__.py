"""Inspect AI tasks and scorer for the guard-bench benchmarks (``inspect eval guard_eval/<benchmark>``).

See README.md in this folder for the task list, parameters and scoring. The re-exports below load lazily, so that
``guard-eval`` (which imports :mod:`guard_eval.inspect_tasks.commands` as a plugin) starts fast and works without
Inspect installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("accuracy", "f1", "guard_scorer", "parse_failure_rate", "precision", "recall", "suite_f1"),
                    "guard_eval.inspect_tasks.scorer"),
    **dict.fromkeys(("guard_task", "inspect_sample", "load_samples", "suite_tasks"), "guard_eval.inspect_tasks.tasks"),
}  # fmt: skip
__all__ = [
    "accuracy", "f1", "guard_scorer", "guard_task", "inspect_sample", "load_samples", "parse_failure_rate",
    "precision", "recall", "suite_f1", "suite_tasks",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
