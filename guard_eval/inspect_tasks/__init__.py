"""Inspect AI tasks and scorer for the guard-bench benchmarks (``inspect eval guard_eval/<benchmark>``).

See README.md in this folder for the task list, parameters and scoring.
"""

from guard_eval.inspect_tasks.scorer import (
    accuracy,
    f1,
    guard_scorer,
    parse_failure_rate,
    precision,
    recall,
    suite_f1,
)
from guard_eval.inspect_tasks.tasks import guard_task, inspect_sample, load_samples, suite_tasks

__all__ = [
    "accuracy", "f1", "guard_scorer", "guard_task", "inspect_sample", "load_samples", "parse_failure_rate",
    "precision", "recall", "suite_f1", "suite_tasks",
]  # fmt: skip
