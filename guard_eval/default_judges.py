"""Built-in judges: ``heuristic`` (offline, deterministic) and ``llm`` (any local HF or Inspect model), and the
``guard-eval judge`` command that applies one to a results dir."""

from __future__ import annotations

from typing import Any

from guard_eval.hookspecs import hookimpl
from guard_eval.judging import JudgeSpec
from guard_eval.options import parse_options


def _heuristic(**options: Any):
    from guard_eval.judging.heuristic import HeuristicJudge

    return HeuristicJudge(**options)


def _llm(**options: Any):
    from guard_eval.judging.llm import LLMJudge

    return LLMJudge(**options)


def cmd_judge(args) -> int:
    import sys

    from guard_eval.judging.results import judge_run
    from guard_eval.redact import secret_keys
    from guard_eval.results.renderers import markdown_table

    options = parse_options(args.judge_option)
    for key in secret_keys(options):
        print(f"guard-eval: warning: --judge-option {key} looks like a secret; it is written as <redacted>, and the "
              f"provider's environment variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) is the safer place for it",
              file=sys.stderr)  # fmt: skip
    s = judge_run(args.results, args.judge, options, args.output, args.overwrite, progress=not args.no_progress)
    fmt = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    rows = [(name, g) for name, g in s["by_benchmark"].items()] + [("all", s)]
    print(
        f"reasoning quality ({s['judge']} judge): total = 0.3 correctness + 0.3 coherence + 0.2 relevance + 0.2 specificity"
    )
    keys = ("total", "correctness", "coherence", "relevance", "specificity")
    print(markdown_table(["benchmark", "n", "errors", *keys], [[name, g["n"], g["errors"], *(fmt(g[k]) for k in keys)]
                                                              for name, g in rows]))  # fmt: skip
    print(f"per-sample scores: {s['file']}; summary added to results.json under 'reasoning_quality'")
    if s["n"] and s["errors"] == s["n"]:
        print(f"guard-eval: error: the {s['judge']} judge scored none of the {s['n']} traces ({s['errors']} errors; "
              f"see the 'error' field in {s['file']})", file=sys.stderr)  # fmt: skip
        return 1
    return 0


@hookimpl
def guard_register_judges():
    return [
        JudgeSpec("heuristic", _heuristic, "offline text statistics: answer consistency, prompt overlap, harm "
                  "categories, boilerplate penalty (a heuristic; docs/judging.md)"),
        JudgeSpec("llm", _llm, "asks a model with the rubric prompt; options model=HF_DIR or an Inspect model name "
                  "(openai/gpt-4o-mini), retries=N"),
    ]  # fmt: skip


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    p = subparsers.add_parser("judge", help="score the reasoning of every trace in a results dir (0-100 rubric)")
    p.add_argument("results", help="a `guard-eval run` output dir (results.json + samples.jsonl)")
    p.add_argument(
        "--judge", default="heuristic", help="registered judge: heuristic (offline) or llm (default: heuristic)"
    )
    p.add_argument(
        "--judge-option",
        action="append",
        metavar="KEY=VALUE",
        help="judge option, repeatable: model=openai/gpt-4o-mini, model=path/to/hf_dir, retries=3",
    )
    p.add_argument("--output", help="per-sample scores file (default: RESULTS/judged.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="judge every sample again instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_judge)
