"""``guard-train``: sub-commands come from the ``guard_register_commands`` hook, like ``guard-eval``'s."""

from __future__ import annotations

import sys

from guard_eval.cli import main as _main


def main(argv=None) -> int:
    return _main(argv, program="guard-train", description="Train reasoning guard models (TRL + PEFT).")


if __name__ == "__main__":
    sys.exit(main())
