"""``python -m guard_eval.lm_eval_tasks [--check]``: regenerate the committed lm-eval YAMLs from the benchmark registry."""

from __future__ import annotations

import argparse
import sys

from guard_eval.lm_eval_tasks import PACKAGED, registry_files, stale_files, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guard_eval.lm_eval_tasks", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 listing stale files instead of writing them")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: {PACKAGED / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(PACKAGED, registry_files(include_plugins=False)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
