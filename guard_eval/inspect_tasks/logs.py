"""``guard-eval report``: the paper's tables from Inspect logs, read by the one Inspect-log reader
(:func:`guard_eval.results.readers.load_inspect_logs`) that ``guard-eval leaderboard`` uses too, so the two cannot
disagree. A later log of a model replaces an earlier one's samples (docs/harnesses.md)."""

from __future__ import annotations

import os
from typing import Any

from guard_eval.results.readers import RunFormatError as LogReadError  # noqa: F401 (the name callers catch)
from guard_eval.verdict import TaskType

TASK_TITLES = {"prompt": "Prompt harmfulness", "response": "Response harmfulness", "refusal": "Refusal detection"}


def summarize_logs(paths: list[str | os.PathLike], bootstrap: int = 1000) -> dict[str, Any]:
    """``{"models": {model: {"benchmarks", "averages", "logs"}}, "skipped": [...]}``, the metrics computed by
    :func:`guard_eval.results.rundir.summarize` (the code behind ``guard-eval run``'s results.json)."""
    from guard_eval.results.readers import load_inspect_logs
    from guard_eval.results.rundir import summarize

    skipped: list[str] = []
    models = {}
    for run in load_inspect_logs(list(paths), bootstrap=0, skipped=skipped):
        records = [{"benchmark": r.name, "task": r.task, "gold": o.gold, "pred": o.pred}
                   for r in run.benchmarks.values() for o in r.outcomes or []]  # fmt: skip
        benchmarks, averages = summarize(records, bootstrap)
        models[run.name] = {"benchmarks": benchmarks, "averages": averages, "logs": run.meta["logs"]}
    return {"models": models, "skipped": skipped}


def render_markdown(summary: dict[str, Any]) -> str:
    """The paper's tables (F1 per benchmark and sample-weighted average, one table per task type, a row per model)
    followed by each model's per-benchmark details."""
    from guard_eval import plugins
    from guard_eval.results.renderers import markdown_table

    order = list(plugins.benchmarks())
    rank = lambda name: (order.index(name) if name in order else len(order), name)  # noqa: E731
    models = summary["models"]
    parts = []
    for task in TaskType:
        names = sorted({b for m in models.values() for b, v in m["benchmarks"].items() if v["task"] == task.value}, key=rank)
        rows = [[model, *[f"{m['benchmarks'][b]['f1']:.2f} (n={m['benchmarks'][b]['n']})" if b in m["benchmarks"]
                          else "" for b in names], f"{m['averages'][task.value]['f1']:.2f}"]
                for model, m in models.items() if task.value in m["averages"]]  # fmt: skip
        if names:
            parts.append(f"### {TASK_TITLES[task.value]} (F1, positive = {task.positive})\n\n"
                         + markdown_table(["model", *names, "weighted avg"], rows))  # fmt: skip
    header = ["benchmark", "task", "n", "F1", "95% CI", "precision", "recall", "accuracy", "parse fail %"]
    for model, m in models.items():
        rows = [
            [name, v["task"], v["n"], f"{v['f1']:.2f}", f"[{v['f1_ci'][0]:.1f}, {v['f1_ci'][1]:.1f}]" if v["f1_ci"] else "",
             f"{v['precision']:.2f}", f"{v['recall']:.2f}", f"{v['accuracy']:.2f}", f"{v['parse_failure_rate']:.1f}"]
            for name, v in sorted(m["benchmarks"].items(), key=lambda kv: rank(kv[0]))
        ]  # fmt: skip
        parts.append(f"### {model}: details ({len(m['logs'])} log(s))\n\n" + markdown_table(header, rows))
    return "\n\n".join(parts)
