"""Loading checkpoints: a local HF model dir, a hub id, a PEFT (LoRA) adapter dir on top of its base model, a named
model source or a ``*.gguf`` file (both resolved to a cached HF dir by :mod:`guard_eval.model_sources`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guard_eval.model_sources import resolve

CHECKPOINT_METADATA = "guard_bench.json"  # written next to checkpoints by guard-train


def is_adapter(model: str) -> bool:
    return (Path(model) / "adapter_config.json").is_file()


def checkpoint_metadata(model: str) -> dict[str, Any]:
    """guard-train's metadata for a checkpoint dir (method, base, data hash, config, metrics), or ``{}``."""
    path = Path(model) / CHECKPOINT_METADATA
    return json.loads(path.read_text()) if path.is_file() else {}


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def adapter_base(model: str) -> str:
    """The base model a LoRA adapter dir was trained on (``base_model_name_or_path`` in ``adapter_config.json``)."""
    return json.loads((Path(model) / "adapter_config.json").read_text())["base_model_name_or_path"]


def tokenizer_source(model: str) -> str:
    """Where the tokenizer lives: the dir itself, or the base model's for an adapter saved without one."""
    if is_adapter(model) and not (Path(model) / "tokenizer_config.json").is_file():
        return adapter_base(model)
    return model


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    model = resolve(model)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source(model))
    tokenizer.padding_side = "left"  # decoder-only batched generation
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model: str, device: str | None = None, dtype: str | None = None, merge_lora: bool = True):
    """Load a causal LM for inference. ``dtype`` defaults to bf16 on GPU and fp32 on CPU.

    A LoRA adapter dir is loaded on its base model (``base_model_name_or_path`` in ``adapter_config.json``) and merged,
    so generation runs at base-model speed.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = resolve(model)
    device = device or default_device()
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    if is_adapter(model):
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(adapter_base(model), dtype=torch_dtype)
        lm = PeftModel.from_pretrained(base, model)
        lm = lm.merge_and_unload() if merge_lora else lm
    else:
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
    return lm.to(device).eval()
