"""``guard-train grpo``: GRPO with verifiable rewards on labelled guard prompts.

Any registered reward can be used by name with a weight (``rewards: {label_accuracy: 1.0, format_valid: 0.5,
reasoning_quality: 0.5}``); TRL sums the weighted rewards per completion and normalises them within each group of
``num_generations`` samples of one prompt. ``beta`` is the KL weight towards the input policy (TRL's default is 0).
TRL 1.16's GRPO does not truncate prompts: ``max_length`` does not apply here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard_eval.prompting import PromptVariant
from guard_train.config import ConfigError, option
from guard_train.training import TrainConfig


@dataclass(kw_only=True)
class GrpoConfig(TrainConfig):
    benchmarks: list[str] = option(["demo"], help="labelled prompts: benchmark or suite names")
    data_dir: str | None = option(None, help="data directory (default: $GUARD_DATA_DIR)")
    limit: int | None = option(None, help="at most N prompts per benchmark (a seeded random subset)", min=1)
    prompt_variant: PromptVariant = option("chat", help="prompt format: chat, system or raw")
    rewards: dict[str, float] = option({"label_accuracy": 1.0, "format_valid": 0.5, "reasoning_quality": 0.5},
                                       help="registered reward name -> weight (guard-train rewards lists them)")  # fmt: skip
    reward_options: dict[str, dict[str, Any]] = option({}, help="keyword options per reward, e.g. "
                                                       "{reasoning_quality: {judge: heuristic}}")  # fmt: skip
    num_generations: int = option(4, help="completions per prompt (the group GRPO normalises over)", min=2)
    temperature: float = option(0.9, help="sampling temperature of the rollouts", min=0)
    top_p: float = option(1.0, help="nucleus sampling of the rollouts", min=0)
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
        from guard_eval.runner import resolve_benchmarks
        from guard_train.rewards import get_rewards

        super().validate()
        resolve_benchmarks(self.benchmarks)
        get_rewards(list(self.rewards))
        unknown = sorted(set(self.reward_options) - set(self.rewards))
        if unknown:
            raise KeyError(f"reward_options for {unknown}, which are not in rewards {sorted(self.rewards)}")


def run(cfg: GrpoConfig) -> str:
    from guard_train.training import start

    finished = start(cfg)
    if finished:
        return finished
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from guard_train.data import load_samples, prompt_rows
    from guard_train.metadata import data_hash
    from guard_train.rewards import get_rewards
    from guard_train.training import Measure, load_policy, load_tokenizer, resolve_model, save, trainer_args

    rows = prompt_rows(load_samples(cfg.benchmarks, cfg.data_dir, cfg.limit, cfg.seed), cfg.prompt_variant)
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
    from guard_train.rewards import reward_owners

    owners = reward_owners()
    data = {"benchmarks": cfg.benchmarks, "n": len(rows), "hash": data_hash(rows)}
    return save(trainer, cfg, "grpo", model, data, m.metrics(trainer),
                reward_plugins={name: owners.get(name, "?") for name in cfg.rewards})  # fmt: skip
