"""``guard-eval report LOGDIR``: the paper's weighted-average tables from Inspect logs of the guard tasks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from guard_eval.hookspecs import hookimpl


def cmd_report(args: argparse.Namespace) -> int:
    from guard_eval.inspect_tasks.logs import render_markdown, summarize_logs

    summary = summarize_logs(args.logs, bootstrap=args.bootstrap)
    for line in summary["skipped"]:
        print(f"skipped {line}", file=sys.stderr)
    if not summary["models"]:
        print(f"no guard_scorer results in {', '.join(args.logs)}", file=sys.stderr)
        return 1
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2) if args.json == "-" else render_markdown(summary))
    return 0


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    p = subparsers.add_parser(
        "report",
        help="F1 tables (per benchmark, weighted average per task type) from Inspect logs of the guard tasks",
        description="Reads Inspect logs (.eval/.json, folders searched recursively) written by the guard_eval/* "
        "tasks or any task scored with guard_scorer; a later log of the same model replaces earlier samples.",
    )
    p.add_argument("logs", nargs="+", help="Inspect log dirs or files")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE ('-': print JSON only)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the F1 CI (0: none)")
    p.set_defaults(func=cmd_report)
