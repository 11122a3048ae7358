"""``reasoning_quality``: the rubric as an Inspect scorer, next to the label scorer of the benchmark tasks.

    from guard_eval.judging.inspect_scorer import reasoning_quality
    Task(dataset=..., solver=generate(), scorer=[guard_scorer(), reasoning_quality()])

    inspect score LOG.eval --scorer guard_eval/judging/inspect_scorer.py@reasoning_quality   # re-score a log

What it reads from a sample: the task type from ``metadata["task"]`` (``prompt``, ``response``, ``refusal``), the
conversation from ``metadata["prompt"]`` / ``metadata["response"]`` (else from GuardReasoner's ``Human user:`` /
``AI assistant:`` input text), the gold label from the target, and the trace from the model's completion. The value is
a dict (total + the four components, 0-100), so the log holds a mean of each; a trace the judge could not score is
recorded unscored (excluded from the means) with the reason.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from guard_eval.judging import JudgeInput, get_judge
from guard_eval.judging.rubric import COMPONENTS

VALUE_KEYS = ("total", *COMPONENTS)


def judge_input(state: TaskState, target: Target) -> JudgeInput:
    """The JudgeInput of one Inspect sample; raises ``ValueError`` naming the sample when the task is unknown."""
    from guard_eval.prompting import parse_input
    from guard_eval.verdict import normalize_label

    meta = state.metadata or {}
    task = meta.get("task")
    if task not in ("prompt", "response", "refusal"):
        raise ValueError(
            f"sample {state.sample_id!r}: metadata['task'] must be prompt, response or refusal, got {task!r}"
        )
    prompt, response = meta.get("prompt"), meta.get("response")
    if prompt is None:
        try:
            prompt, response = parse_input(state.input_text.rstrip("\n") + "\n\n")
        except ValueError:
            raise ValueError(
                f"sample {state.sample_id!r}: no metadata['prompt'] and no 'Human user:' block in the input"
            ) from None
    gold = None
    if target and target.text.strip():
        try:
            gold = normalize_label(target.text, task)
        except ValueError as e:
            raise ValueError(f"sample {state.sample_id!r}: target: {e}") from None
    return JudgeInput(prompt, response, state.output.completion, task, gold)


@scorer(metrics={key: [mean(), stderr()] for key in VALUE_KEYS})
def reasoning_quality(judge: str = "heuristic", **judge_options: Any):
    """Score the reasoning of each trace 0-100 with a registered judge (``heuristic`` offline, or ``llm``)."""
    instance = get_judge(judge, **judge_options)

    async def score(state: TaskState, target: Target) -> Score:
        item = judge_input(state, target)
        ascore = getattr(instance, "ascore", None)  # async judges (llm) share Inspect's event loop
        result = (await ascore([item]) if ascore else instance.score([item]))[0]
        if result.error:
            return Score.unscored(reason=result.error, metadata={"judge": judge, "raw": result.raw})
        return Score(
            value={key: round(getattr(result, key), 4) for key in VALUE_KEYS},
            explanation=result.raw,
            metadata={"judge": judge},
        )

    return score
