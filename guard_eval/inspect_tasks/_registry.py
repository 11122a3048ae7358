# ruff: noqa: F401
"""Behind the ``inspect_ai`` entry point ``guard_eval``: importing registers the tasks, so that
``inspect eval guard_eval/<benchmark>`` finds every registered benchmark, plugins' included."""

from guard_eval.inspect_tasks.scorer import (
    accuracy,
    f1,
    guard_scorer,
    parse_failure_rate,
    precision,
    recall,
    suite_f1,
)
from guard_eval.inspect_tasks.tasks import benchmark_tasks, guard_benchmark, guard_suite
from guard_eval.judging.inspect_scorer import reasoning_quality

globals().update(benchmark_tasks())
