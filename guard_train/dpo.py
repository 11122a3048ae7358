"""``guard-train dpo``: DPO on preference pairs (``guard-train prefs``), starting from the SFT checkpoint.

The reference model is the SFT policy itself. From an SFT LoRA adapter, TRL trains the adapter further and keeps a
frozen copy of it (adapter ``ref``) as the reference; from full or merged SFT weights, a fresh LoRA adapter is trained
and the reference is the same weights with the adapter disabled. Either way ``beta`` pulls towards the SFT policy,
never towards the pre-SFT base. Defaults follow the plan: beta 0.1, lr 5e-6, 1 epoch, batch 4, gradient accumulation 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard_train.config import option
from guard_train.training import TrainConfig


@dataclass(kw_only=True)
class DpoConfig(TrainConfig):
    data: str = option(help="preference pairs: a JSONL file (prompt, chosen, rejected) or a prefs output dir",
                       path="file")  # fmt: skip
    beta: float = option(0.1, help="DPO temperature: higher keeps the policy closer to the reference (SFT)", min=0)
    loss_type: str = option("sigmoid", help="TRL DPO loss (sigmoid, ipo, hinge, ...)")
    learning_rate: float = option(5e-6, help="peak learning rate", min=0)
    per_device_train_batch_size: int = option(4, help="pairs per device per forward pass", min=1)
    gradient_accumulation_steps: int = option(8, help="forward passes per optimizer step", min=1)
    limit: int | None = option(None, help="use at most N pairs (the first N)", min=1)


def run(cfg: DpoConfig) -> str:
    from guard_train.training import start

    finished = start(cfg)
    if finished:
        return finished
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from guard_train.data import read_pairs
    from guard_train.metadata import data_hash
    from guard_train.training import Measure, load_policy, load_tokenizer, resolve_model, save, trainer_args

    pairs = read_pairs(cfg.data)[: cfg.limit]
    records = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    model = resolve_model(cfg)
    policy, peft_config = load_policy(model, cfg)
    args = DPOConfig(**trainer_args(cfg, beta=cfg.beta, loss_type=[cfg.loss_type], max_length=cfg.max_length))
    with Measure() as m:
        trainer = DPOTrainer(model=policy, args=args, train_dataset=Dataset.from_list(records),
                             processing_class=load_tokenizer(model), peft_config=peft_config)  # fmt: skip
        trainer.train()
    data = {"pairs": cfg.data, "n": len(records), "hash": data_hash(records)}
    from guard_eval.modeling import is_adapter

    reference = ("a frozen copy of the input adapter" if is_adapter(model) else
                 "the input model with the new adapter disabled" if peft_config else "a frozen copy of the input model")
    return save(trainer, cfg, "dpo", model, data, m.metrics(trainer), reference=reference)
