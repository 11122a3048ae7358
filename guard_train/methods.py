"""Training methods as registered objects: ``guard-train <name> --config FILE`` and the experiment pipeline run them.

Built-ins (``sft``, ``prefs``, ``dpo``, ``grpo``, ``refine``) are registered by :mod:`guard_train.default_methods`
through the ``guard_register_training_methods`` hook, exactly like a third-party method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingMethod:
    """``run(config) -> str`` returns the output (a checkpoint dir; for ``prefs`` the pairs file) and, given a
    finished output dir, returns it again without redoing the work."""

    name: str
    config_cls: type
    run: Callable[[Any], str]
    description: str = ""


def training_methods() -> dict[str, TrainingMethod]:
    from guard_eval.plugins import get_plugin_manager

    return get_plugin_manager().registry("guard_register_training_methods")


def get_method(name: str) -> TrainingMethod:
    from guard_eval.plugins import lookup

    return lookup(training_methods(), name, "training method")
