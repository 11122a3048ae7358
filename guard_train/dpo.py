"""``guard-train dpo``: DPO on preference pairs (``guard-train prefs``), starting from the SFT checkpoint.

The reference model is the SFT policy itself. From an SFT LoRA adapter, TRL trains the adapter further and keeps a
frozen copy of it (adapter ``ref``) as the reference; from full or merged SFT weights, a fresh LoRA adapter is trained
and the reference is the same weights with the adapter disabled. Either way ``beta`` pulls towards the SFT policy,
never towards the pre-SFT base. Defaults follow the plan: beta 0.1, lr 5e-6, 1 epoch, batch 4, gradient accumulation 8.

Losses are TRL's (``loss_type``, one or a weighted list). ``sft_weight`` adds TRL's ``sft`` loss (the chosen trace's
token-averaged NLL) with that weight: GuardReasoner's HS-DPO ``pref_ftx`` and RPO's ``alpha`` (TRL 1.16 has no
``rpo_alpha``; ``loss_type: [sigmoid, sft]`` is its replacement). Pairs carrying a ``weight`` (``prefs``'s
``pair_weights``) are drawn with probability proportional to it, with replacement: the expected gradient of a batch
is then that of the weighted loss, whatever the loss type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from guard_train.config import ConfigError, option
from guard_train.training import TrainConfig

DpoLoss = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]  # fmt: skip


@dataclass(kw_only=True)
class DpoConfig(TrainConfig):
    data: str = option(help="preference pairs: a JSONL file (prompt, chosen, rejected) or a prefs output dir",
                       path="file")  # fmt: skip
    beta: float = option(0.1, help="DPO temperature: higher keeps the policy closer to the reference (SFT)", min=0)
    loss_type: DpoLoss | list[DpoLoss] = option("sigmoid", help="TRL DPO loss, or a list combined with loss_weights "
                                                "(sigmoid, ipo, hinge, robust, apo_zero, sft, ...)")  # fmt: skip
    loss_weights: list[float] | None = option(None, help="one weight per loss_type entry (default: 1 each)")
    sft_weight: float = option(0.0, help="add TRL's sft loss (NLL of the chosen trace) with this weight: HS-DPO's "
                               "pref_ftx, RPO's alpha (0: none)", min=0)  # fmt: skip
    use_pair_weights: bool = option(True, help="draw pairs with probability proportional to their 'weight' field "
                                    "(with replacement) when the pairs carry unequal weights")  # fmt: skip
    learning_rate: float = option(5e-6, help="peak learning rate", min=0)
    per_device_train_batch_size: int = option(4, help="pairs per device per forward pass", min=1)
    gradient_accumulation_steps: int = option(8, help="forward passes per optimizer step", min=1)
    limit: int | None = option(None, help="use at most N pairs (the first N)", min=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        losses, weights = self.losses()
        if len(set(losses)) != len(losses):
            raise ConfigError(f"loss_type: {losses} names a loss twice (sft_weight adds 'sft')")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_types):
            raise ConfigError(f"loss_weights: {len(self.loss_weights)} weights for loss_type {self.loss_types}")

    @property
    def loss_types(self) -> list[str]:
        return [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)

    def losses(self) -> tuple[list[str], list[float]]:
        """TRL's ``loss_type`` and ``loss_weights``, with ``sft_weight`` appended as an ``sft`` term."""
        losses = self.loss_types
        weights = list(self.loss_weights) if self.loss_weights is not None else [1.0] * len(losses)
        if self.sft_weight > 0:
            losses, weights = [*losses, "sft"], [*weights, self.sft_weight]
        return losses, weights


def pair_weights(pairs: list[dict[str, Any]]) -> list[float] | None:
    """The pairs' ``weight`` fields, or ``None`` when they carry none or all are equal (uniform sampling)."""
    weights = [float(p.get("weight", 1.0)) for p in pairs]
    if any(w < 0 for w in weights):
        raise ValueError("pair weights must be >= 0")
    if not any(w > 0 for w in weights):
        raise ValueError("every pair has weight 0")
    return None if len(set(weights)) <= 1 else weights


def weighted_trainer_class():
    """TRL's DPOTrainer whose training sampler draws pair i with probability ``weight_i / sum(weights)``."""
    import torch
    from trl import DPOTrainer

    class WeightedDPOTrainer(DPOTrainer):
        def __init__(self, *args: Any, pair_weights: list[float] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # TRL keeps extra columns through tokenisation (and may drop over-long prompts): read the weights back
            # from the prepared dataset so they stay aligned with its rows.
            ds = self.train_dataset
            self.pair_weights = list(ds["pair_weight"]) if pair_weights and "pair_weight" in ds.column_names else None

        def _get_train_sampler(self, train_dataset=None):
            if self.pair_weights is None:
                return super()._get_train_sampler(train_dataset)
            generator = torch.Generator().manual_seed(self.args.seed)
            return torch.utils.data.WeightedRandomSampler(self.pair_weights, num_samples=len(self.pair_weights),
                                                          replacement=True, generator=generator)  # fmt: skip

    return WeightedDPOTrainer


def build_trainer(cfg: DpoConfig, model: str, pairs: list[dict[str, Any]]):
    """The DPO trainer on ``pairs`` (and the pair weights it samples with, or None)."""
    from datasets import Dataset
    from trl import DPOConfig

    from guard_train.training import load_policy, load_tokenizer, trainer_args

    weights = pair_weights(pairs) if cfg.use_pair_weights else None
    records = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    if weights:
        records = [{**r, "pair_weight": w} for r, w in zip(records, weights)]
    policy, peft_config = load_policy(model, cfg)
    losses, loss_weights = cfg.losses()
    args = DPOConfig(**trainer_args(cfg, beta=cfg.beta, loss_type=losses, loss_weights=loss_weights,
                                    max_length=cfg.max_length))  # fmt: skip
    trainer = weighted_trainer_class()(model=policy, args=args, train_dataset=Dataset.from_list(records),
                                       processing_class=load_tokenizer(model), peft_config=peft_config,
                                       pair_weights=weights)  # fmt: skip
    return trainer, weights


def run(cfg: DpoConfig) -> str:
    from guard_train.training import start

    finished = start(cfg)
    if finished:
        return finished
    from guard_eval.modeling import is_adapter
    from guard_train.data import read_pairs
    from guard_train.metadata import data_hash
    from guard_train.training import Measure, resolve_model, save

    pairs = read_pairs(cfg.data)[: cfg.limit]
    model = resolve_model(cfg)
    with Measure() as m:
        trainer, weights = build_trainer(cfg, model, pairs)
        trainer.train()
    records = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    data = {"pairs": cfg.data, "n": len(records), "hash": data_hash(records),
            "weighted": weights is not None}  # fmt: skip
    reference = ("a frozen copy of the input adapter" if is_adapter(model) else
                 "the input model with the new adapter disabled" if cfg.lora else "a frozen copy of the input model")
    losses, loss_weights = cfg.losses()
    return save(trainer, cfg, "dpo", model, data, m.metrics(trainer), reference=reference,
                losses=dict(zip(losses, loss_weights)))  # fmt: skip
