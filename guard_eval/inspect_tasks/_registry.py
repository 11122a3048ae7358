# ruff: noqa: F401
"""Behind the ``inspect_ai`` entry point ``guard_eval``: importing registers the tasks, so that
``inspect eval guard_eval/<benchmark>`` finds them."""

from guard_eval.judging.inspect_scorer import reasoning_quality
from guard_eval.inspect_tasks.scorer import (
    accuracy,
    f1,
    guard_scorer,
    parse_failure_rate,
    precision,
    recall,
    suite_f1,
)
from guard_eval.inspect_tasks.tasks import (
    aegis,
    beavertails,
    demo_prompt,
    demo_refusal,
    demo_response,
    guard_benchmark,
    guard_suite,
    harmbench_prompt,
    harmbench_response,
    jbb_response,
    openai_moderation,
    safe_rlhf,
    simple_safety_tests,
    toxicchat,
    wildguard_prompt,
    wildguard_refusal,
    wildguard_response,
    xstest_refusal,
    xstest_response,
)
