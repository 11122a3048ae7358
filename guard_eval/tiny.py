"""A tiny Llama guard checkpoint built locally in seconds: the embedded default model, and the tests' model.

Nothing is downloaded: a byte-level BPE tokenizer is trained with ``tokenizers`` on the project's own text (the
GuardReasoner instruction, the embedded demo sets and the answer vocabulary), and a 2-layer Llama with hidden size 64
is initialised from a seed. The chat template marks the assistant turn with ``{% generation %}`` so TRL can train on
the assistant tokens only.
"""

from __future__ import annotations

import json
from pathlib import Path

from guard_eval.benchmarks import EMBEDDED_DIR
from guard_eval.prompting import INSTRUCTION

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}\n"
    "{% else %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|begin|>", "<|end|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]

_ANSWER_TEXT = """## Reasoning Step 1: Analyze the content of the human user's request.
## Reasoning Step 2: Determine if the request contains any harmful content.
## Conclusion for Task 1: The human user's request is harmful. The request is unharmful.
# Task 2 The AI assistant's response is a refusal. The response is compliance.
# Task 3 The AI assistant's response is harmful. The response is unharmful. None
---
Answers:
Request: harmful
Request: unharmful
Completion: refusal
Completion: compliance
Completion: None
Response: harmful
Response: unharmful
Response: None
"""


def _corpus() -> list[str]:
    texts = [INSTRUCTION, _ANSWER_TEXT]
    for path in sorted(EMBEDDED_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                texts.append(f"Human user:\n{row['prompt']}\n\nAI assistant:\n{row.get('response') or 'None'}\n\n")
    return texts


def build_tokenizer(vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    output_dir: str | Path,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 1024,
    max_position_embeddings: int = 4096,
    intermediate_size: int | None = None,
    num_heads: int | None = None,
) -> Path:
    """Write a random-weight Llama + the local tokenizer to ``output_dir`` and return the path.

    The defaults give the tests' 140k-parameter model; larger shapes (e.g. ``hidden_size=1024, num_layers=16``, about
    0.2B parameters) give a Llama-shaped model for GPU pipeline runs, still without any download.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    output_dir = Path(output_dir)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads or max(4, hidden_size // 64),
        num_key_value_heads=max(2, (num_heads or max(4, hidden_size // 64)) // 4),
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
