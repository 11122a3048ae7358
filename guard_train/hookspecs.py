"""Training hook specifications, added to the plugin manager by guard_train's plugins (``guard_add_hookspecs``).

Like guard_eval's registration hooks they return lists the host flattens, each object with a unique ``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guard_eval.hookspecs import hookspec

if TYPE_CHECKING:
    from guard_train.methods import TrainingMethod
    from guard_train.pairs import PairStrategy
    from guard_train.rewards import Reward


@hookspec
def guard_register_rewards() -> list[Reward]:
    """Register reward functions for GRPO and preference-pair scoring.

    :return: :class:`guard_train.rewards.Reward` objects wrapping a TRL-style callable
        ``(prompts, completions, **columns) -> list[float | None]``.
    """


@hookspec
def guard_register_pair_strategies() -> list[PairStrategy]:
    """Register preference-pair strategies (``guard-train prefs``'s ``strategy``).

    :return: :class:`guard_train.pairs.PairStrategy` objects: a ``name`` and ``select(samples, min_margin=...,
        **options)`` returning ``(chosen, rejected)`` index pairs into one prompt's scored samples.
    """


@hookspec
def guard_register_training_methods() -> list[TrainingMethod]:
    """Register training methods (``guard-train <name> --config FILE``).

    :return: :class:`guard_train.methods.TrainingMethod` objects: a ``name``, a config dataclass whose field
        metadata ``help`` is the CLI help, and a ``run(config)`` function.
    """
