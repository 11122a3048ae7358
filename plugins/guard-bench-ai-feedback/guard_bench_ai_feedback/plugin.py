"""The ``ai_feedback`` reward: a judge model (local HF dir or any Inspect model) reads each trace and scores it.

It reuses guard-bench's LLM judge (the shared rubric prompt, answer parsing and retries), so the feedback the policy
is trained on is the same signal the evaluation reports. The judge model comes from
``reward_options: {ai_feedback: {model: ...}}`` or ``$GUARD_AI_FEEDBACK_MODEL``; a trace whose judgement cannot be
parsed gets ``None`` (TRL ignores it) rather than a made-up score.
"""

from __future__ import annotations

import os
from functools import lru_cache

from guard_eval.hookspecs import hookimpl
from guard_eval.judging import JudgeInput
from guard_train.rewards import Reward, completion_text, conversation

MODEL_ENV = "GUARD_AI_FEEDBACK_MODEL"


@lru_cache(maxsize=4)
def _judge(model: str, retries: int):
    from guard_eval.judging import get_judge

    return get_judge("llm", model=model, retries=retries)


def ai_feedback(prompts, completions, task=None, gold=None, model: str | None = None, retries: int = 1, **_):
    """The judge's (coherence + relevance + specificity) / 300, in [0, 1]; ``None`` where it gave no usable answer."""
    model = model or os.environ.get(MODEL_ENV)
    if not model:
        raise ValueError(f"ai_feedback needs a judge model: reward_options {{ai_feedback: {{model: ...}}}} or ${MODEL_ENV}")
    tasks = task or ["prompt"] * len(completions)
    golds = gold or [None] * len(completions)
    items = [JudgeInput(*conversation(p), completion_text(c), t, g) for p, c, t, g in zip(prompts, completions, tasks, golds)]
    scores = _judge(model, retries).score(items)
    return [None if s.error else round((s.coherence + s.relevance + s.specificity) / 300, 6) for s in scores]


@hookimpl
def guard_register_rewards():
    return [Reward("ai_feedback", ai_feedback, "a judge model scores coherence, relevance and specificity "
                   f"(option model=HF_DIR or an Inspect model name, or ${MODEL_ENV})")]  # fmt: skip
