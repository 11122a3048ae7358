"""The Inspect backend: any model ``inspect_ai.model.get_model`` accepts (``openai/gpt-4o-mini``, ``anthropic/...``,
``hf/<hub id>``, ``vllm/<dir>``, ``mockllm/model``), with its API key in the environment.

Chat prompts go to the model as chat messages (its provider applies the template); raw text goes as one user turn.
The LLM judge uses the same code (:meth:`InspectBackend.agenerate`) for its Inspect models.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

from guard_eval.generation import GenerationConfig, Prompt

MAX_IN_FLIGHT = 32  # requests this backend has open at once unless max_connections says otherwise


def chat_messages(prompt: Prompt) -> str | list[Any]:
    """Our ``[{"role", "content"}]`` messages as Inspect chat messages; raw text as is (Inspect sends a user turn)."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    if isinstance(prompt, str):
        return prompt
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    for m in prompt:  # a missing "content" is a KeyError of its own, not a bad role
        if m.get("role") not in kinds:
            raise ValueError(f"chat message role must be one of {', '.join(kinds)}, got {m.get('role')!r}")
    return [kinds[m["role"]](content=m["content"]) for m in prompt]


# Inspect providers whose client package is one of our extras (pyproject.toml); others name Inspect's own hint.
PROVIDER_EXTRAS = {"openai": ("openai", "api"), "anthropic": ("anthropic", "api")}


def prerequisite_message(model: str, inspect_message: str) -> str:
    """One line for a provider whose client package is missing, without Inspect's rich ``[bold]`` markup.

    >>> prerequisite_message("openai/gpt-4o-mini", "[bold]ERROR[/bold]: OpenAI API requires ... [bold]pip install openai[/bold]")
    "model openai/gpt-4o-mini needs the 'openai' package: pip install 'guard-bench[api]' (or pip install openai)"
    """
    provider = model.split("/", 1)[0]
    if provider in PROVIDER_EXTRAS:
        package, extra = PROVIDER_EXTRAS[provider]
        return f"model {model} needs the {package!r} package: pip install 'guard-bench[{extra}]' (or pip install {package})"
    text = " ".join(re.sub(r"\[/?[a-z ]+\]", "", inspect_message).split())
    return f"model {model}: {text.removeprefix('ERROR: ')}"


class InspectBackend:
    """Options: ``max_connections`` (concurrent requests; default: the provider's Inspect default, at most
    ``MAX_IN_FLIGHT`` from here); any other keyword goes to ``get_model`` (``base_url``, ``custom_outputs`` ...).
    ``device`` and ``dtype`` are accepted for symmetry with the local backends and ignored."""

    name = "inspect"

    def __init__(
        self,
        model: str,
        max_connections: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        **model_args: Any,
    ) -> None:
        from inspect_ai.model import get_model

        self.model_path = model
        self.max_connections = max_connections
        try:
            self.model = get_model(model, **model_args)
        except Exception as e:
            if type(e).__name__ != "PrerequisiteError":
                raise
            raise RuntimeError(prerequisite_message(model, str(e))) from None
        self._loop: asyncio.AbstractEventLoop | None = None

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        # One loop for the backend's life: API clients made on the first call stay usable on later ones.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.agenerate(prompts, config))

    async def agenerate(
        self,
        prompts: Sequence[Prompt],
        config: GenerationConfig,
        on_error: Callable[[Exception], str] | None = None,
    ) -> list[list[str]]:
        """:meth:`generate` for callers inside an event loop. With ``on_error``, a failed request becomes that
        prompt's completions (``on_error(exception)`` each) instead of failing the whole call."""
        limit = asyncio.Semaphore(self.max_connections or MAX_IN_FLIGHT)

        async def one(prompt: Prompt) -> list[str]:
            async with limit:
                try:
                    return await self._samples(chat_messages(prompt), config)
                except Exception as e:
                    if on_error is None:
                        raise
                    return [on_error(e)] * config.num_samples

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    async def _samples(self, messages: str | list[Any], config: GenerationConfig) -> list[str]:
        """``num_samples`` completions: asked as ``num_choices`` in one request, topped up by more requests (with
        other seeds) where the provider returns fewer choices. Greedy samples are one answer, asked once."""
        sampling = config.temperature > 0
        want = config.num_samples if sampling else 1
        texts: list[str] = []
        for attempt in range(want):  # at least one more completion per request
            missing = want - len(texts)
            if missing <= 0:
                break
            output = await self.model.generate(messages, config=self._config(config, missing, attempt))
            texts += [c.message.text for c in output.choices[:missing]] or [output.completion]
        return texts if sampling else texts * config.num_samples

    def _config(self, config: GenerationConfig, choices: int, attempt: int):
        from inspect_ai.model import GenerateConfig

        return GenerateConfig(
            max_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p if config.top_p < 1 else None,  # some APIs refuse temperature and top_p together
            seed=config.seed + attempt,
            num_choices=choices if choices > 1 else None,
            max_connections=self.max_connections,
        )
