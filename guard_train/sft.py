"""``guard-train sft``: reasoning SFT on GuardReasoner-format traces (prompt -> reasoning + Answers block).

The loss covers the completion (the assistant turn) only: examples are TRL prompt-completion records, which works with
every chat template. LoRA by default (``lora: false`` for full fine-tuning); ``merge: true`` also saves merged weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Literal

from guard_eval.prompting import PromptVariant
from guard_train.config import option
from guard_train.data import check_source, load_traces
from guard_train.metadata import data_hash
from guard_train.training import Measure, TrainConfig, load_policy, load_tokenizer, resolve_model, save, start, trainer_args


@dataclass(kw_only=True)
class SftConfig(TrainConfig):
    data: list[str] = option(["synthetic:demo"], help="trace sources: synthetic:<benchmarks>, guardreasoner:<1B|3B>"
                             "[:benchmarks], a JSONL file or a guard-eval results dir (see guard_train/data.py)")  # fmt: skip
    data_dir: str | None = option(None, help="data directory for guardreasoner: and benchmark sources "
                                  "(default: $GUARD_DATA_DIR)")  # fmt: skip
    only_correct: bool = option(True, help="drop traces whose answer contradicts the gold label (where it is known)")
    limit: int | None = option(None, help="at most N examples per source (a seeded random subset)", min=1)
    prompt_variant: PromptVariant = option("chat", help="prompt format: chat, system or raw (GuardReasoner's raw text)")
    synthetic_quote_words: int = option(30, help="words of the input quoted in synthetic traces (0: none, for tiny "
                                        "models that cannot learn to copy)", min=0)  # fmt: skip

    max_reasoning_tokens: int | None = option(None, help="reasoning budget at train time: traces whose reasoning "
                                              "(before the final Answers block) is longer are handled per "
                                              "reasoning_overflow", min=1)  # fmt: skip
    reasoning_overflow: Literal["drop", "truncate"] = option("drop", help="over-budget traces: drop them, or keep the "
                                                             "first max_reasoning_tokens of the reasoning + the Answers")  # fmt: skip

    padding_free: bool = option(False, help="no padding: each micro-batch runs as one sequence of its examples "
                                "back to back (TRL's padding-free collator; attention stays within each example). "
                                "Same examples, same loss, fewer tokens computed; on a GPU pair it with "
                                "attn_implementation=flex_attention (SDPA is slower than padding)")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        for spec in self.data:
            check_source(spec, self.data_dir)
        if self.padding_free and self.attn_implementation in (None, "sdpa", "eager"):
            warnings.warn(f"padding_free with {self.attn_implementation or 'sdpa'} attention masks the whole "
                          "micro-batch densely (0.41-0.67x the padded speed on an H200, docs/performance.md); use "
                          "attn_implementation=flex_attention or flash_attention_2", stacklevel=2)  # fmt: skip


def apply_reasoning_budget(examples: list, tokenizer, budget: int, overflow: str) -> list:
    """Traces whose reasoning fits ``budget`` tokens; longer ones dropped or cut (reasoning cut, Answers kept)."""
    kept = []
    for ex in examples:
        cut = ex.completion.rfind("Answers:")
        reasoning, answers = (ex.completion[:cut], ex.completion[cut:]) if cut >= 0 else (ex.completion, "")
        ids = tokenizer(reasoning, add_special_tokens=False)["input_ids"]
        if len(ids) <= budget:
            kept.append(ex)
        elif overflow == "truncate" and answers:
            short = tokenizer.decode(ids[:budget]).rstrip()
            kept.append(replace(ex, completion=f"{short}\n\n{answers}"))
    return kept


def build_trainer(cfg: SftConfig, model: str, records: list[dict]):
    """The TRL SFTTrainer for ``records`` (prompt-completion pairs): loss on the completion tokens only.

    ``padding_free`` passes TRL's own padding-free collator rather than TRL's ``padding_free=True``, which refuses a
    ``max_length`` (it cannot truncate); this way TRL still truncates each example to ``max_length`` as usual, and
    transformers keeps attention within each example from the ``position_ids`` the collator restarts at 0.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    policy, peft_config = load_policy(model, cfg)
    tokenizer = load_tokenizer(model)
    collator = None
    if cfg.padding_free:  # load_tokenizer has set a pad token (eos when the tokenizer had none)
        collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    args = SFTConfig(**trainer_args(cfg, max_length=cfg.max_length, completion_only_loss=True))
    return SFTTrainer(model=policy, args=args, train_dataset=Dataset.from_list(records), data_collator=collator,
                      processing_class=tokenizer, peft_config=peft_config)  # fmt: skip


def training_examples(cfg: SftConfig, model: str) -> tuple[list, int]:
    """The traces ``cfg`` trains on (after the reasoning budget) and how many were read before it."""
    examples = load_traces(cfg.data, cfg.data_dir, cfg.prompt_variant, cfg.only_correct, cfg.limit, cfg.seed,
                           cfg.synthetic_quote_words)
    n_traces = len(examples)
    if cfg.max_reasoning_tokens:
        examples = apply_reasoning_budget(examples, load_tokenizer(model), cfg.max_reasoning_tokens,
                                          cfg.reasoning_overflow)  # fmt: skip
        print(f"reasoning budget {cfg.max_reasoning_tokens} tokens ({cfg.reasoning_overflow}): {len(examples)} of "
              f"{n_traces} traces")  # fmt: skip
    return examples, n_traces


def run(cfg: SftConfig) -> str:
    finished = start(cfg)
    if finished:
        return finished
    model = resolve_model(cfg)
    examples, n_traces = training_examples(cfg, model)
    records = [ex.to_trl() for ex in examples]
    with Measure() as m:
        trainer = build_trainer(cfg, model, records)
        trainer.train()
    data = {"sources": cfg.data, "n": len(records), "traces_before_budget": n_traces, "hash": data_hash(records)}
    return save(trainer, cfg, "sft", model, data, m.metrics(trainer))
