"""``guard-train grpo``: GRPO with verifiable rewards on labelled guard prompts.

Any registered reward can be used by name with a weight (``rewards: {label_accuracy: 1.0, format_valid: 0.5,
reasoning_quality: 0.5}``); TRL sums the weighted rewards per completion and normalises them within each group of
``num_generations`` samples of one prompt. ``beta`` is the KL weight towards the input policy (TRL's default is 0).
TRL 1.16's GRPO does not truncate prompts: ``max_length`` does not apply here. Every logged step's rewards (mean
and std per reward, completion lengths, clipped share) are appended to ``OUTPUT_DIR/rewards.jsonl``: the reward curve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard_train.config import ConfigError, option
from guard_train.sampling import SamplingBase
from guard_train.training import TrainConfig


@dataclass(kw_only=True)
class GrpoConfig(SamplingBase, TrainConfig):
    rewards: dict[str, float] = option({"label_accuracy": 1.0, "format_valid": 0.5, "reasoning_quality": 0.5},
                                       help="registered reward name -> weight (guard-train rewards lists them)")  # fmt: skip
    reward_options: dict[str, dict[str, Any]] = option({}, help="keyword options per reward, e.g. "
                                                       "{reasoning_quality: {judge: heuristic}}")  # fmt: skip
    num_generations: int = option(4, help="completions per prompt (the group GRPO normalises over)", min=2)
    beta: float = option(0.04, help="KL penalty weight towards the input policy (0 disables the reference model)", min=0)
    max_completion_length: int = option(512, help="tokens per rollout", min=1)
    learning_rate: float = option(1e-6, help="peak learning rate", min=0)
    mask_truncated_completions: bool = option(False, help="leave rollouts cut at max_completion_length out of the "
                                              "loss (TRL's mask_truncated_completions)")  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise ConfigError(f"num_generations: per_device_train_batch_size x gradient_accumulation_steps ({batch}) "
                              f"must be a multiple of num_generations ({self.num_generations})")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        self.check_sampling()


REWARD_LOG = "rewards.jsonl"
_CURVE_KEYS = ("reward", "completions/", "kl", "loss", "entropy", "clip_ratio")


def reward_log_callback(path: Path):
    """A TrainerCallback appending each training log's reward/length/KL entries to ``path`` (one JSON line per log)."""
    from transformers import TrainerCallback

    class RewardLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            keep = {k: v for k, v in (logs or {}).items() if k.startswith(_CURVE_KEYS)}
            if keep and state.is_world_process_zero:
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": state.global_step, **keep}) + "\n")

    return RewardLog()


def run(cfg: GrpoConfig) -> str:
    from guard_train.training import start

    finished = start(cfg)
    if finished:
        return finished
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from guard_train.metadata import data_hash
    from guard_train.rewards import get_rewards
    from guard_train.training import Measure, load_policy, load_tokenizer, resolve_model, save, trainer_args

    rows = cfg.prompt_rows()
    rewards = get_rewards(list(cfg.rewards))
    funcs = [r.bind(**cfg.reward_options.get(name, {})) for name, r in rewards.items()]
    model = resolve_model(cfg)
    policy, peft_config = load_policy(model, cfg)
    args = GRPOConfig(**trainer_args(
        cfg, num_generations=cfg.num_generations, temperature=cfg.temperature, top_p=cfg.top_p, beta=cfg.beta,
        max_completion_length=cfg.max_completion_length, reward_weights=list(cfg.rewards.values()),
        mask_truncated_completions=cfg.mask_truncated_completions,
    ))  # fmt: skip
    log_path = Path(cfg.output_dir) / REWARD_LOG
    log_path.unlink(missing_ok=True)
    with Measure() as m:
        trainer = GRPOTrainer(model=policy, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows),
                              processing_class=load_tokenizer(model), peft_config=peft_config,
                              callbacks=[reward_log_callback(log_path)])  # fmt: skip
        trainer.train()
    from guard_train.rewards import reward_owners

    owners = reward_owners()
    data = {"benchmarks": cfg.benchmarks, "n": len(rows), "hash": data_hash(rows)}
    return save(trainer, cfg, "grpo", model, data, m.metrics(trainer),
                reward_plugins={name: owners.get(name, "?") for name in cfg.rewards}, reward_log=REWARD_LOG)  # fmt: skip
