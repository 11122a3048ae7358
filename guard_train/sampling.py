"""What every method that samples from the policy on labelled prompts shares (prefs, refine, grpo).

One base, so ``benchmarks``/``limit``/``temperature``/``rewards`` mean the same thing (and are checked the same way)
in every sampling method; each method only overrides the defaults it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard_eval.prompting import PromptVariant
from guard_train.config import option


@dataclass(kw_only=True)
class SamplingBase:
    """Labelled prompts, rollout sampling and the rewards that score the rollouts."""

    benchmarks: list[str] = option(["demo"], help="labelled prompts: benchmark or suite names")
    data_dir: str | None = option(None, help="data directory (default: $GUARD_DATA_DIR)")
    limit: int | None = option(None, help="at most N prompts per benchmark (a seeded random subset)", min=1)
    prompt_variant: PromptVariant = option("chat", help="prompt format: chat, system or raw")
    temperature: float = option(0.9, help="sampling temperature", min=0)
    top_p: float = option(1.0, help="nucleus sampling", min=0)
    rewards: dict[str, float] = option({"reasoning_quality": 0.7, "label_accuracy": 0.3},
                                       help="score = sum(weight * reward) over these registered rewards")  # fmt: skip
    reward_options: dict[str, dict[str, Any]] = option({}, help="keyword options per reward, e.g. "
                                                       "{reasoning_quality: {judge: llm, judge_options: {model: M}}}")  # fmt: skip

    def check_sampling(self) -> None:
        """Benchmarks and rewards exist, and ``reward_options`` only names configured rewards."""
        from guard_eval.selection import resolve_benchmarks
        from guard_train.rewards import get_rewards

        resolve_benchmarks(self.benchmarks)
        get_rewards(list(self.rewards))
        unknown = sorted(set(self.reward_options) - set(self.rewards))
        if unknown:
            raise KeyError(f"reward_options for {unknown}, which are not in rewards {sorted(self.rewards)}")

    def prompt_rows(self) -> list[dict[str, Any]]:
        """The labelled prompts as rows with the ``task``/``gold`` columns rewards read."""
        from guard_train.data import load_samples, prompt_rows

        return prompt_rows(load_samples(self.benchmarks, self.data_dir, self.limit, self.seed), self.prompt_variant)
