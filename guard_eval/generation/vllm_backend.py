"""The vLLM backend: continuous batching and prefix caching (every guard prompt starts with the same instruction).

Prompts go in as token ids that the model's own HF tokenizer made exactly as the ``hf`` backend does (chat template
via :func:`~guard_eval.generation.hf.render_prompt`, special tokens per
:func:`~guard_eval.generation.hf.add_special_tokens`), so both backends see the same tokens; vLLM's own prompt
handling would add a second BOS to a rendered chat template.
A PEFT adapter dir runs as a LoRA adapter on its base model (``base_model_name_or_path`` in ``adapter_config.json``).

Named ``vllm_backend`` so that it cannot be mistaken for the ``vllm`` package; ``vllm`` is imported on first use only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from guard_eval.generation import GenerationConfig, Prompt
from guard_eval.generation.hf import add_special_tokens, render_prompt
from guard_eval.modeling import adapter_base, is_adapter, load_tokenizer, tokenizer_source


def lora_rank(adapter_dir: str) -> int:
    """The ``max_lora_rank`` vLLM needs for an adapter: its rank rounded up to a size vLLM supports (8, 16, 32, ...)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    ranks = [config.get("r") or 8, *(config.get("rank_pattern") or {}).values()]
    size = 8
    while size < max(ranks):
        size *= 2
    return size


class VLLMBackend:
    """Options: ``dtype`` (default ``auto``: the checkpoint's), ``tensor_parallel_size`` (GPUs per model),
    ``gpu_memory_utilization`` (default 0.9), ``max_model_len`` (default: the model's), ``enforce_eager``; any other
    keyword goes to ``vllm.LLM`` as is. ``device`` is accepted for symmetry with ``hf`` and ignored (vLLM picks)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        dtype: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        device: str | None = None,
        **llm_kwargs: object,
    ) -> None:
        import vllm

        self.model_path = model
        self.tokenizer = load_tokenizer(model)
        kwargs: dict[str, object] = {
            "model": model, "tokenizer": tokenizer_source(model), "dtype": dtype or "auto",
            "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len, "enforce_eager": enforce_eager, "enable_prefix_caching": True,
        }  # fmt: skip
        self.lora_request = None
        if is_adapter(model):
            kwargs.update(model=adapter_base(model), enable_lora=True, max_loras=1, max_lora_rank=lora_rank(model))
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("adapter", 1, str(Path(model).resolve()))
        self.llm = vllm.LLM(**{**kwargs, **llm_kwargs})

    def generate(
        self, prompts: Sequence[Prompt], config: GenerationConfig, *, ignore_eos: bool = False
    ) -> list[list[str]]:
        """``ignore_eos`` forces ``max_new_tokens`` tokens per completion (throughput benchmarks)."""
        from vllm import SamplingParams

        if not prompts:
            return []
        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        ids = self.tokenizer(texts, add_special_tokens=add_special_tokens(prompts))["input_ids"]
        sampling = config.temperature > 0
        # Greedy samples are all the same answer: generate it once and repeat it.
        n = config.num_samples if sampling else 1
        params = [
            SamplingParams(
                n=n, temperature=config.temperature if sampling else 0.0, top_p=config.top_p if sampling else 1.0,
                max_tokens=config.max_new_tokens, seed=config.seed + i if sampling else None, ignore_eos=ignore_eos,
                skip_special_tokens=True,
            )  # a seed per prompt: prompts do not all draw the same random stream
            for i in range(len(ids))
        ]  # fmt: skip
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(x)} for x in ids], params, use_tqdm=False, lora_request=self.lora_request
        )
        if len(outputs) != len(ids):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(ids)} prompts")
        completions = []
        for out in outputs:  # vLLM returns outputs in prompt order
            texts = [c.text for c in sorted(out.outputs, key=lambda c: c.index)]
            completions.append(texts if sampling else texts[:1] * config.num_samples)
        return completions
