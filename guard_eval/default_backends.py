"""Built-in generation backends."""

from __future__ import annotations

from guard_eval.generation import BackendSpec
from guard_eval.hookspecs import hookimpl


def _hf(model: str, **options):
    from guard_eval.generation.hf import HFBackend

    return HFBackend(model, **options)


@hookimpl
def guard_register_backends():
    return [BackendSpec("hf", _hf, priority=0, description="HF transformers generate (batched; CPU or GPU; LoRA)")]
