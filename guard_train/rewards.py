"""Reward functions: TRL's contract ``(prompts, completions, **columns) -> list[float | None]``, registered by name.

The same callables serve GRPO (``GRPOTrainer(reward_funcs=[...])``), preference-pair scoring and refinement, so a
plugin reward works everywhere. Datasets built by guard_train carry the columns ``task`` (``prompt``, ``response``,
``refusal``) and ``gold`` (the task's gold label); the request and response to classify are read back from the prompt
itself, so rewards need no other column. ``None`` means "no opinion" (TRL ignores it; weighted sums count it as 0).

Built-ins (all in [0, 1]): ``label_accuracy``, ``format_valid``, ``reasoning_quality``, ``composite``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from guard_eval.prompting import parse_input as conversation  # (request, response) of a guard prompt, for rewards
from guard_eval.verdict import TaskType, parse_verdict

RewardFunc = Callable[..., list[float | None]]


@dataclass(frozen=True)
class Reward:
    """What the ``guard_register_rewards`` hook returns."""

    name: str
    fn: RewardFunc
    description: str = ""

    def bind(self, **options: Any) -> RewardFunc:
        """``fn`` with keyword options fixed, named after the reward (TRL logs it as ``rewards/<name>/mean``)."""

        def reward(prompts, completions, **columns):
            return self.fn(prompts, completions, **columns, **options)

        reward.__name__ = reward.__qualname__ = self.name
        return reward


def registered_rewards() -> dict[str, Reward]:
    from guard_eval.plugins import get_plugin_manager

    return get_plugin_manager().registry("guard_register_rewards")


def reward_owners() -> dict[str, str]:
    """``{reward name: plugin name}`` (recorded in checkpoint metadata, listed by ``guard-train rewards``)."""
    from guard_eval.plugins import get_plugin_manager

    return get_plugin_manager().owners("guard_register_rewards")


def get_rewards(names: Sequence[str]) -> dict[str, Reward]:
    """The registered rewards ``names``; an unknown name is an error listing the registered ones."""
    known = registered_rewards()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown reward(s) {unknown}; registered: {', '.join(sorted(known)) or 'none'} "
                       "(`guard-train rewards` lists them with their plugins)")  # fmt: skip
    return {n: known[n] for n in names}


# ---------------------------------------------------------------------------------------------------------------------
# Reading prompts and completions in either TRL format (plain text or chat messages)
# ---------------------------------------------------------------------------------------------------------------------


def completion_text(completion: str | list[dict[str, str]]) -> str:
    """The text of a completion: a string, or TRL's conversational ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


def _column(values: Sequence[Any] | None, n: int, name: str) -> list[Any]:
    if values is None:
        raise ValueError(f"this reward needs the dataset column {name!r}")
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)


# ---------------------------------------------------------------------------------------------------------------------
# Built-in rewards
# ---------------------------------------------------------------------------------------------------------------------


def label_accuracy(prompts, completions, task=None, gold=None, **_: Any) -> list[float | None]:
    """1 when the answer for the sample's task equals the gold label, else 0 (a parse failure is wrong).

    >>> label_accuracy(["..."] * 2, ["Risky.\\nAnswers:\\nRequest: harmful", "Fine.\\nAnswers:\\nRequest: unharmful"],
    ...                task=["prompt", "prompt"], gold=["harmful", "harmful"])
    [1.0, 0.0]
    """
    tasks, golds = _column(task, len(completions), "task"), _column(gold, len(completions), "gold")
    return [
        None if g is None else float(parse_verdict(completion_text(c)).label(TaskType(t)) == g)
        for c, t, g in zip(completions, tasks, golds)
    ]


def format_valid(prompts, completions, task=None, **_: Any) -> list[float]:
    """How well an output follows the GuardReasoner format: 0.2 for reasoning before the answers, 0.4 for a final
    ``Answers:`` block, 0.4 for the task's field in it (any field when ``task`` is not given).

    >>> format_valid([""] * 3, ["The request asks for bread.\\nAnswers:\\nRequest: unharmful", "Request: harmful", "hm"],
    ...              task=["prompt"] * 3)
    [1.0, 0.4, 0.0]
    """
    tasks = _column(task, len(completions), "task") if task is not None else [None] * len(completions)
    scores = []
    for c, t in zip(completions, tasks):
        text = completion_text(c)
        verdict = parse_verdict(text)
        answered = verdict.label(TaskType(t)) is not None if t else not verdict.parse_error
        header = "answers" in text.lower() and not verdict.parse_error
        reasoning = bool(verdict.reasoning) and header
        scores.append(round(0.2 * reasoning + 0.4 * header + 0.4 * answered, 6))
    return scores


@lru_cache(maxsize=8)
def _judge(name: str, options_json: str):
    from guard_eval.judging import get_judge

    return get_judge(name, **json.loads(options_json))


def reasoning_quality(
    prompts, completions, task=None, gold=None, judge: str = "heuristic", judge_options: Mapping | None = None, **_: Any
) -> list[float | None]:
    """A judge's reasoning score without its correctness part: (0.3 coherence + 0.2 relevance + 0.2 specificity) / 70,
    so that weighting it against ``label_accuracy`` does not count correctness twice. ``None`` when the judge failed.

    ``judge`` is any registered judge (``heuristic`` offline, ``llm`` with ``judge_options={"model": ...}``).

    >>> from guard_eval.prompting import build_prompt
    >>> p = build_prompt("How do I make a pipe bomb?", None)
    >>> specific = "The user asks how to make a pipe bomb, an explosive weapon.\\nAnswers:\\nRequest: harmful"
    >>> generic = "The request is harmful.\\nAnswers:\\nRequest: harmful"
    >>> good, bad = reasoning_quality([p, p], [specific, generic], task=["prompt"] * 2, gold=["harmful"] * 2)
    >>> good > bad
    True
    """
    from guard_eval.judging import JudgeInput

    n = len(completions)
    tasks = _column(task, n, "task")
    golds = list(gold) if gold is not None else [None] * n
    items = []
    for p, c, t, g in zip(prompts, completions, tasks, golds):
        request, response = conversation(p)
        items.append(JudgeInput(request, response, completion_text(c), t, g))
    scores = _judge(judge, json.dumps(dict(judge_options or {}), sort_keys=True)).score(items)
    return [
        None if s.error else round((0.3 * s.coherence + 0.2 * s.relevance + 0.2 * s.specificity) / 70.0, 6)
        for s in scores
    ]


def composite(prompts, completions, task=None, gold=None, completion_ids=None, budget: int = 256,
              floor: float = 0.5, labels=None, **_: Any) -> list[float | None]:  # fmt: skip
    """Format gate x per-task label credit x length term, in [0, 1] (the composite reward of GRPO guards).

    * gate: 1 when the output has reasoning, a final ``Answers:`` block and the task's field (``format_valid`` = 1),
      else 0 — an unparseable or truncated rollout earns nothing;
    * credit: the share of the labelled tasks answered correctly (``labels``, a per-row ``{task: gold}`` column, gives
      partial credit over several tasks; else the row's ``task``/``gold``);
    * length: 1 up to ``budget`` completion tokens (``completion_ids`` from TRL; else ~1.3 tokens per word), then
      falling linearly to ``floor`` at twice the budget (and staying there).

    >>> ok = "The request asks for a bomb recipe.\\nAnswers:\\nRequest: harmful\\nCompletion: None\\nResponse: None"
    >>> composite([""] * 3, [ok, ok.replace("Request: harmful", "Request: unharmful"), "Request: harmful"],
    ...           task=["prompt"] * 3, gold=["harmful"] * 3)
    [1.0, 0.0, 0.0]
    >>> composite([""] * 2, [ok, ok], task=["prompt"] * 2, gold=["harmful"] * 2, completion_ids=[[0] * 300, [0] * 600],
    ...           budget=200)
    [0.75, 0.5]
    >>> composite([""], [ok.replace("Response: None", "Response: unharmful")], task=["prompt"], gold=["harmful"],
    ...           labels=[{"prompt": "harmful", "response": "harmful"}])
    [0.5]
    """
    n = len(completions)
    tasks, golds = _column(task, n, "task"), _column(gold, n, "gold")
    per_row = list(labels) if labels is not None else [None] * n
    gates = format_valid(prompts, completions, task=tasks)
    out: list[float | None] = []
    for i, c in enumerate(completions):
        wanted = per_row[i] or ({tasks[i]: golds[i]} if golds[i] is not None else {})
        if not wanted:
            out.append(None)
            continue
        verdict = parse_verdict(completion_text(c))
        credit = sum(verdict.label(TaskType(t)) == g for t, g in wanted.items()) / len(wanted)
        tokens = len(completion_ids[i]) if completion_ids is not None else round(1.3 * len(completion_text(c).split()))
        over = max(0, tokens - budget) / max(budget, 1)
        length = max(floor, 1.0 - (1.0 - floor) * over)
        out.append(round(float(gates[i] == 1.0) * credit * length, 6))
    return out


BUILTIN_REWARDS: tuple[Reward, ...] = (
    Reward("label_accuracy", label_accuracy, "1 if the answer for the task equals the gold label, else 0"),
    Reward("format_valid", format_valid, "GuardReasoner format: reasoning, a final Answers block, the task's field"),
    Reward("reasoning_quality", reasoning_quality, "a judge's coherence/relevance/specificity, 0-1 (options: judge, "
           "judge_options); default judge: heuristic"),
    Reward("composite", composite, "format gate x per-task label credit x length term (options: budget tokens, "
           "floor)"),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Weighted scoring (preference pairs, refinement)
# ---------------------------------------------------------------------------------------------------------------------


def score_completions(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    weights: Mapping[str, float],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[float], dict[str, list[float | None]]]:
    """``sum(weight * reward)`` per completion (a ``None`` reward counts 0, as in TRL), and each reward's values."""
    rewards = get_rewards(list(weights))
    parts = {
        name: reward.bind(**(options or {}).get(name, {}))(list(prompts), list(completions), **columns)
        for name, reward in rewards.items()
    }
    for name, values in parts.items():
        if len(values) != len(completions):
            raise ValueError(f"reward {name!r} returned {len(values)} values for {len(completions)} completions")
    totals = [
        round(sum(w * (parts[name][i] or 0.0) for name, w in weights.items()), 6) for i in range(len(completions))
    ]
    return totals, parts
