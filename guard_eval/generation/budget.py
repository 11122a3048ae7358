"""A reasoning budget: at most N reasoning tokens, then the ``Answers:`` block is forced.

Generate up to ``budget`` tokens; a completion that has not reached its ``Answers:`` block by then gets
``"\\n\\nAnswers: \\nRequest:"`` appended (the start of GuardReasoner's block, as
:meth:`guard_eval.verdict.Verdict.format_answers` writes it: forcing the first key too keeps a model cut off in its
first task from answering in another shape) and the model continues the same assistant turn for ``answer_tokens`` more
tokens, cut after its ``Response:`` line: the short remainder with the labels. Needs a backend with a ``tokenizer``
(``hf``) to continue a chat turn; completions already answered are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from guard_eval.generation import Backend, GenerationConfig, Prompt

FORCED_ANSWERS = "\n\nAnswers: \nRequest:"


def has_answers(text: str) -> bool:
    """Whether the completion has reached an ``Answers:`` block with at least one parsed field."""
    from guard_eval.verdict import parse_verdict

    return "answers" in text.lower() and not parse_verdict(text).parse_error


def until_response_line(text: str) -> str:
    r"""The forced remainder up to the end of its ``Response:`` line (the model may go on to a next task).

    >>> until_response_line(" harmful\nCompletion: refusal\nResponse: unharmful\n\n# Task 2\n## Reasoning Step 1")
    ' harmful\nCompletion: refusal\nResponse: unharmful'
    """
    import re

    m = re.search(r"response\W{0,4}?\s*[:：][^\n]*", text, re.IGNORECASE)
    return text[: m.end()] if m else text


def continuation_prompt(tokenizer, prompt: Prompt, partial: str) -> str:
    """The rendered prompt, the partial completion and the forced header, as raw text that continues the turn."""
    from guard_eval.generation.hf import render_prompt

    text = render_prompt(tokenizer, prompt)
    bos = getattr(tokenizer, "bos_token", None)
    # raw prompts are tokenized with special tokens (hf.add_special_tokens): do not double a template's BOS
    if bos and text.startswith(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        text = text[len(bos) :]
    return text + partial.rstrip() + FORCED_ANSWERS


def generate(backend: Backend, prompts: Sequence[Prompt], config: GenerationConfig, budget: int | None,
             answer_tokens: int = 32) -> list[list[str]]:  # fmt: skip
    """``backend.generate`` under a reasoning budget (``None``: unlimited, ``config.max_new_tokens`` as is)."""
    if budget is None:
        return backend.generate(prompts, config)
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"--reasoning-budget needs a backend with a tokenizer (hf); {backend.name!r} has none")
    first = backend.generate(prompts, replace(config, max_new_tokens=min(budget, config.max_new_tokens)))
    todo = [(i, j) for i, outs in enumerate(first) for j, text in enumerate(outs) if not has_answers(text)]
    if not todo:
        return first
    cont = [continuation_prompt(tokenizer, prompts[i], first[i][j]) for i, j in todo]
    rest = backend.generate(cont, replace(config, max_new_tokens=answer_tokens, num_samples=1))
    out = [list(outs) for outs in first]
    for (i, j), more in zip(todo, rest):
        out[i][j] = first[i][j].rstrip() + FORCED_ANSWERS + until_response_line(more[0])
    return out
