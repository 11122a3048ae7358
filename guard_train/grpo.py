"""``guard-train grpo``: GRPO with verifiable rewards on labelled guard prompts.

Any registered reward can be used by name with a weight (``rewards: {label_accuracy: 1.0, format_valid: 0.5,
reasoning_quality: 0.5}``); TRL sums the weighted rewards per completion and normalises them within each group of
``num_generations`` samples of one prompt. ``beta`` is the KL weight towards the input policy (TRL's default is 0).
TRL 1.16's GRPO does not truncate prompts: ``max_length`` does not apply here.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def __post_init__(self) -> None:
        super().__post_init__()
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise ConfigError(f"num_generations: per_device_train_batch_size x gradient_accumulation_steps ({batch}) "
                              f"must be a multiple of num_generations ({self.num_generations})")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        self.check_sampling()


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
    ))  # fmt: skip
    with Measure() as m:
        trainer = GRPOTrainer(model=policy, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows),
                              processing_class=load_tokenizer(model), peft_config=peft_config)  # fmt: skip
        trainer.train()
    from guard_eval.plugins import get_plugin_manager

    owners = get_plugin_manager().owners("guard_register_rewards")
    data = {"benchmarks": cfg.benchmarks, "n": len(rows), "hash": data_hash(rows)}
    return save(trainer, cfg, "grpo", model, data, m.metrics(trainer),
                reward_plugins={name: owners.get(name, "?") for name in cfg.rewards})  # fmt: skip
