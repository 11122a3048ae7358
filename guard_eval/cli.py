"""``guard-eval``: every sub-command is registered through the ``guard_register_commands`` hook."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

PROGRAM = "guard-eval"


def build_parser(program: str = PROGRAM, description: str = "Evaluate reasoning guard models.") -> argparse.ArgumentParser:
    from guard_eval.plugins import get_plugin_manager

    from importlib.metadata import PackageNotFoundError, version

    parser = argparse.ArgumentParser(prog=program, description=description)
    try:
        parser.add_argument("--version", action="version", version=f"%(prog)s {version('guard-bench')}")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        parser.add_argument("--version", action="version", version="%(prog)s (not installed)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    pm = get_plugin_manager()
    pm.collect(pm.hook.guard_register_commands, program=program, subparsers=subparsers)
    return parser


def main(argv: Sequence[str] | None = None, program: str = PROGRAM, description: str | None = None) -> int:
    parser = build_parser(program, description or "Evaluate reasoning guard models.")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as e:
        # Expected user errors (bad file, unknown name, bad config): one line, no traceback.
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"{program}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
