"""Built-in judges: ``heuristic`` (offline, deterministic) and ``llm`` (any local HF or Inspect model)."""

from __future__ import annotations

from typing import Any

from guard_eval.hookspecs import hookimpl
from guard_eval.judging import JudgeSpec


def _heuristic(**options: Any):
    from guard_eval.judging.heuristic import HeuristicJudge

    return HeuristicJudge(**options)


def _llm(**options: Any):
    from guard_eval.judging.llm import LLMJudge

    return LLMJudge(**options)


@hookimpl
def guard_register_judges():
    return [
        JudgeSpec("heuristic", _heuristic, "offline text statistics: answer consistency, prompt overlap, harm "
                  "categories, boilerplate penalty (a heuristic; docs/judging.md)"),
        JudgeSpec("llm", _llm, "asks a model with the rubric prompt; options model=HF_DIR or an Inspect model name "
                  "(openai/gpt-4o-mini), retries=N"),
    ]  # fmt: skip
