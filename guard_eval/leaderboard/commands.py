"""Built-in ``guard-eval leaderboard`` and ``guard-eval compare`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard_eval.hookspecs import hookimpl

FORMATS = ("md", "csv", "html", "png")  # = guard_eval.results.renderers.FORMATS, without importing the renderers
BASELINES = ("jbb", "guardreasoner-1b", "guardreasoner-3b")  # = guard_eval.results.readers.BASELINES
_SUFFIX = {".md": "md", ".markdown": "md", ".csv": "csv", ".html": "html", ".htm": "html", ".png": "png"}


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from guard_eval.leaderboard import build_table, load_runs, render

    if not args.runs and not args.baseline:
        raise ValueError("give at least one RUN (or --baseline jbb)")
    fmt = args.format or (_SUFFIX.get(Path(args.output).suffix.lower()) if args.output else None) or "md"
    if fmt == "png" and not args.output:
        raise ValueError("--format png needs --output FILE.png")
    runs = load_runs(args.runs, args.baseline or [], args.data_dir, args.bootstrap)
    if args.judge:
        from guard_eval.options import parse_options
        from guard_eval.results.readers import judge_runs

        judge_runs(runs, args.judge, parse_options(args.judge_option), args.bootstrap)
    if args.scoring != "strict":
        from guard_eval.reference_scoring import rescore_runs

        rescore_runs(runs, args.scoring)
    table = build_table(runs, args.bootstrap, args.seed, average=args.average)
    if args.scoring != "strict":
        table.notes.append("--scoring reference: GuardReasoner's evaluate.py rule (last 300 characters, first match; "
                           "unparsed harmful-gold samples dropped, other unparsed samples counted twice); no intervals")
    out = render(table, fmt, args.title, ci=not args.no_ci)
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out if isinstance(out, bytes) else out.encode("utf-8"))
        print(f"{fmt}: {path} ({len(table.rows)} rows, {len(table.columns)} columns)")
        if fmt != "md":
            print(render(table, "md", ci=not args.no_ci))
    else:
        sys.stdout.write(out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from guard_eval.leaderboard import compare_runs, load_runs
    from guard_eval.leaderboard.compare import to_markdown
    from guard_eval.results.rundir import write_records

    runs = load_runs([args.a, args.b], data_dir=args.data_dir, bootstrap=0)
    if len(runs) != 2:
        raise ValueError(f"compare needs two runs, got {len(runs)} from {args.a} and {args.b} (point at one run each)")
    result = compare_runs(runs[0], runs[1], args.bootstrap, args.seed)
    print(to_markdown(result, args.show))
    if args.disagreements:
        path = Path(args.disagreements)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_records(path, result.disagreements)
        print(f"{len(result.disagreements)} disagreements written to {path}")
    return 0


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    p = subparsers.add_parser(
        "leaderboard",
        help="one table of checkpoints x benchmarks (F1 + bootstrap CIs, weighted averages, reasoning quality)",
        description="RUN is a guard-eval results dir, an Inspect log (.eval/.json), an lm-eval results JSON, a "
        "folder of them, or baseline:NAME (jbb, guardreasoner-1b, guardreasoner-3b: stored outputs; or a published row: "
        "guardreasoner-8b, qwen3guard-8b, llama-guard-3-8b, wildguard-7b@qwen3guard, ...); NAME=RUN sets the row name.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--format", choices=FORMATS, help="md (default), csv, html (self-contained) or png (bar chart); "
                   "default from the --output suffix")  # fmt: skip
    p.add_argument("--output", help="write here instead of stdout (needed for png)")
    p.add_argument(
        "--baseline",
        action="append",
        choices=BASELINES,
        help="add stored baseline rows: jbb = the 4 judges of JailbreakBench's judge comparison",
    )
    p.add_argument("--data-dir", help="data directory for baselines (default: $GUARD_DATA_DIR)")
    p.add_argument(
        "--judge",
        help="score the reasoning of runs that keep traces but have no reasoning-quality score "
        "yet (in memory), e.g. heuristic",
    )
    p.add_argument("--judge-option", action="append", metavar="KEY=VALUE", help="option for --judge, repeatable")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ci", action="store_true", help="leave the intervals out of md/html")
    p.add_argument("--title", default="guard-bench leaderboard")
    p.add_argument("--average", choices=("weighted", "mean", "published"), default="weighted",
                   help="averaging scheme: weighted by sample count (GuardReasoner's; default), mean (unweighted), "
                   "published (the average each paper printed, for published rows)")  # fmt: skip
    p.add_argument("--scoring", choices=("strict", "reference"), default="strict",
                   help="strict (default: the last Answers block, unparsed = wrong once) or reference "
                   "(GuardReasoner's evaluate.py rule, to reproduce its published cells)")  # fmt: skip
    p.set_defaults(func=cmd_leaderboard)

    p = subparsers.add_parser("compare", help="per-benchmark deltas of B vs A, paired bootstrap and McNemar tests, "
                              "and the samples where they disagree")  # fmt: skip
    p.add_argument("a", metavar="A", help="baseline run (same kinds of RUN as leaderboard)")
    p.add_argument("b", metavar="B", help="run compared with A")
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=10, help="disagreements to print")
    p.add_argument("--data-dir", help="data directory for baseline:NAME runs (default: $GUARD_DATA_DIR)")
    p.add_argument("--disagreements", help="write all disagreements (with both outputs) to this JSONL file")
    p.set_defaults(func=cmd_compare)
