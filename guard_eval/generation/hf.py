"""The HF transformers backend: batched, length-sorted, left-padded ``generate`` on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence

from guard_eval.generation import GenerationConfig, Prompt
from guard_eval.modeling import load_model, load_tokenizer


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """Chat messages through the tokenizer's chat template; raw text as is."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "this tokenizer has no chat template; use --prompt-variant raw for base models and GuardReasoner checkpoints"
        )
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


class HFBackend:
    name = "hf"

    def __init__(self, model: str, device: str | None = None, dtype: str | None = None, **_: object) -> None:
        self.model_path = model
        self.tokenizer = load_tokenizer(model)
        self.model = load_model(model, device=device, dtype=dtype)

    @property
    def device(self):
        return self.model.device

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        import torch

        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        # Templates already carry the BOS token; raw prompts get the tokenizer's special tokens.
        add_special = not any(isinstance(p, list) for p in prompts)
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=add_special)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # similar lengths share a batch: less padding
        out: list[list[str]] = [[] for _ in texts]
        sampling = config.temperature > 0
        torch.manual_seed(config.seed)
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=add_special
            ).to(self.device)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=config.max_new_tokens,
                    do_sample=sampling,
                    temperature=config.temperature if sampling else None,
                    top_p=config.top_p if sampling else None,
                    num_return_sequences=config.num_samples,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for j, i in enumerate(idx):
                out[i] = new[j * config.num_samples : (j + 1) * config.num_samples]
        return out
