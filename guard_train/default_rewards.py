"""Built-in rewards (label_accuracy, format_valid, reasoning_quality) and ``guard-train rewards``."""

from __future__ import annotations

import argparse

from guard_eval.hookspecs import hookimpl


def cmd_rewards(args: argparse.Namespace) -> int:
    import json

    from guard_eval.results.renderers import markdown_table
    from guard_train.rewards import registered_rewards, reward_owners

    owners = reward_owners()
    rows = [[name, owners.get(name, "?"), r.description] for name, r in sorted(registered_rewards().items())]
    if args.json:
        print(json.dumps([dict(zip(("name", "plugin", "description"), r)) for r in rows], indent=2))
    else:
        print(markdown_table(["reward", "plugin", "description"], rows))
    return 0


@hookimpl
def guard_register_rewards():
    from guard_train.rewards import BUILTIN_REWARDS

    return list(BUILTIN_REWARDS)


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-train":
        return
    p = subparsers.add_parser("rewards", help="list registered reward functions and the plugins providing them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rewards)
