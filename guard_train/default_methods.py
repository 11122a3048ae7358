"""Built-in training methods (sft, prefs, dpo, grpo, refine), the prefs pair strategies, and their ``guard-train <method>`` commands.

Registered through guard-bench's ``guard_bench`` entry points like any third-party plugin; it also adds the training
hooks (:mod:`guard_train.hookspecs`) to the plugin manager.

Commands are made for every registered method, so a plugin's method gets ``guard-train <name> --config FILE`` and
``--<key> VALUE`` options (help from its config's field metadata) without writing CLI code.
"""

from __future__ import annotations

import argparse
import sys

from guard_eval.hookspecs import hookimpl
from guard_train import dpo, grpo, prefs, refine, sft
from guard_train.methods import TrainingMethod


def cmd_train(args: argparse.Namespace) -> int:
    from guard_train.config import config_from_args
    from guard_train.methods import get_method

    method = get_method(args.method)
    config = config_from_args(method.config_cls, args)
    print(f"{method.name}: {method.run(config)}")
    return 0


@hookimpl
def guard_add_hookspecs(pluginmanager):
    from guard_train import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def guard_register_training_methods():
    return [
        TrainingMethod("sft", sft.SftConfig, sft.run, "reasoning SFT on GuardReasoner-format traces (LoRA or full)"),
        TrainingMethod("prefs", prefs.PrefsConfig, prefs.run, "preference pairs: sample k completions per prompt, "
                       "score with weighted rewards, pair best vs worst"),
        TrainingMethod("dpo", dpo.DpoConfig, dpo.run, "DPO on preference pairs; the reference is the input (SFT) policy"),
        TrainingMethod("grpo", grpo.GrpoConfig, grpo.run, "GRPO with registered rewards (label accuracy, format, "
                       "reasoning quality, plugins)"),
        TrainingMethod("refine", refine.RefineConfig, refine.run, "iterative refinement: generate, judge, regenerate "
                       "the weak answers, DPO on refined pairs, N rounds"),
    ]  # fmt: skip


@hookimpl
def guard_register_pair_strategies():
    from guard_train.pairs import BUILTIN_PAIR_STRATEGIES

    return list(BUILTIN_PAIR_STRATEGIES)


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-train":
        return
    from guard_train.config import add_config_arguments
    from guard_train.methods import training_methods

    for name, method in sorted(training_methods().items()):
        doc = getattr(sys.modules.get(method.run.__module__), "__doc__", None)
        p = subparsers.add_parser(name, help=method.description, description=doc,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_arguments(p, method.config_cls)
        p.set_defaults(func=cmd_train, method=name)
