"""``guard-train``: sub-commands come from the ``guard_register_commands`` hook, like ``guard-eval``'s."""

from __future__ import annotations

import sys

from guard_eval.cli import main as _main

BUILTINS = "guard_train.default_methods"  # registered through guard-bench's own `guard_bench` entry points


def main(argv=None) -> int:
    from guard_eval.plugins import get_plugin_manager

    if not get_plugin_manager().has_plugin(BUILTINS):
        print("guard-train: warning: guard_train's built-in plugins are not registered (the installed metadata predates "
              "their entry points); rerun `pip install --no-deps -e .`", file=sys.stderr)  # fmt: skip
    return _main(argv, program="guard-train", description="Train reasoning guard models (TRL + PEFT).")


if __name__ == "__main__":
    sys.exit(main())
