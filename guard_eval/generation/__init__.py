"""Generation backends: turn prompts (raw text or chat messages) into completions.

A backend is registered through the ``guard_register_backends`` hook as a :class:`BackendSpec`; ``get_backend`` picks
one by name, or the available one with the highest priority for ``"auto"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from guard_eval.prompting import Messages

Prompt = str | Messages


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    num_samples: int = 1  # completions per prompt
    batch_size: int = 16
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Loaded model + generation. ``generate`` returns ``num_samples`` completions per prompt, in prompt order.

    A backend may also have ``stream(prompts, config)``, yielding each prompt's ``(index, completions)`` as soon as
    they are done, in any order (the HF backend: a batch at a time, or rows as they end with continuous batching):
    the runner then gives it all prompts at once instead of a chunk at a time, and writes results as they come."""

    name: str

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]: ...


def completions(
    backend: Backend, prompts: Sequence[Prompt], config: GenerationConfig, chunk: int, budget: int | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Every prompt's ``(index, completions)``, in the order they are done: the backend's own ``stream`` when it
    has one, else ``generate`` over ``chunk`` prompts at a time (and always so under a reasoning ``budget``,
    which generates in two passes: :mod:`~guard_eval.generation.budget`)."""
    from guard_eval.generation.budget import generate as budgeted_generate

    stream = getattr(backend, "stream", None)
    if stream is not None and budget is None:
        yield from stream(prompts, config)
        return
    for start in range(0, len(prompts), chunk):
        yield from enumerate(budgeted_generate(backend, prompts[start : start + chunk], config, budget), start)


@dataclass(frozen=True)
class BackendSpec:
    name: str
    factory: Callable[..., Backend]  # factory(model: str, **options) -> Backend
    is_available: Callable[[], bool] = lambda: True
    priority: int = 0  # "auto" picks the available spec with the highest priority
    description: str = ""


def available_backends() -> dict[str, BackendSpec]:
    from guard_eval import plugins

    return plugins.backends()


def get_backend(name: str, model: str, **options: Any) -> Backend:
    """Instantiate backend ``name`` (or ``"auto"``) for ``model`` (a local dir, hub id or LoRA adapter dir)."""
    specs = available_backends()
    if name == "auto":
        usable = [s for s in specs.values() if s.is_available()]
        if not usable:
            raise RuntimeError("no generation backend is available")
        spec = max(usable, key=lambda s: s.priority)
    elif name not in specs:
        raise ValueError(f"unknown backend {name!r}; registered: {', '.join(sorted(specs))}")
    else:
        spec = specs[name]
        if not spec.is_available():
            raise RuntimeError(f"backend {name!r} is not available here (is its extra installed?)")
    return spec.factory(model, **options)
