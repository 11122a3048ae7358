"""Built-in generation backends: ``hf`` (always), ``vllm`` (when installed) and ``inspect``.

``auto`` takes ``hf``: its fast loop measured 1.4-1.8x vLLM 0.24.0 on one H200 and starts in seconds, not ~100 s
(docs/performance.md); ``vllm`` is for what the fast loop does not run (sliding-window, MoE) and tensor parallelism."""

from __future__ import annotations

import importlib.util

from guard_eval.generation import BackendSpec
from guard_eval.hookspecs import hookimpl


def _hf(model: str, **options):
    from guard_eval.generation.hf import HFBackend

    return HFBackend(model, **options)


def _vllm(model: str, **options):
    from guard_eval.generation.vllm_backend import VLLMBackend

    return VLLMBackend(model, **options)


def _inspect(model: str, **options):
    from guard_eval.generation.inspect_backend import InspectBackend

    return InspectBackend(model, **options)


def _installed(module: str):
    return lambda: importlib.util.find_spec(module) is not None


@hookimpl
def guard_register_backends():
    return [
        BackendSpec("hf", _hf, priority=10,
                    description="fast decode loop on HF transformers (static cache, CUDA graphs; CPU or GPU; LoRA)"),
        BackendSpec("vllm", _vllm, _installed("vllm"), priority=0,
                    description="vLLM (GPU; prefix caching, tensor parallel, LoRA); extra [vllm]"),
        BackendSpec("inspect", _inspect, _installed("inspect_ai"), priority=-10,
                    description="any Inspect model name (openai/..., anthropic/..., mockllm/model); extra [inspect]"),
    ]  # fmt: skip
