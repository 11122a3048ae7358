"""Read the guard scores out of Inspect logs and summarise them like ``guard-eval run`` does (paper tables).

A log counts when its samples carry ``guard_scorer`` metadata (``gold``, ``pred``, ``benchmark``, ``task``), whichever
task wrote it (a single benchmark, ``guard_suite``, or a user's own task using the scorer). Samples are keyed by model
and sample id, and a later log replaces an earlier one's samples, so re-running a benchmark or mixing per-benchmark
logs with a suite log never counts a sample twice.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard_eval.verdict import TaskType

TASK_TITLES = {"prompt": "Prompt harmfulness", "response": "Response harmfulness", "refusal": "Refusal detection"}


class LogReadError(ValueError):
    """A path that is not an Inspect log (or folder of logs); the message names it."""


@dataclass
class LogRecords:
    """Per-model sample records (``benchmark``, ``task``, ``id``, ``gold``, ``pred``) and which logs were used."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    logs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def log_paths(paths: list[str | os.PathLike]) -> list[tuple[str, float]]:
    """``(log file, mtime)`` under folders (recursively, in Inspect's own listing) and for given files."""
    from inspect_ai.log import list_eval_logs

    found: list[tuple[str, float]] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [(info.name.removeprefix("file://"), info.mtime or 0.0)
                      for info in list_eval_logs(str(path), recursive=True)]  # fmt: skip
        elif path.is_file():
            found.append((str(path), path.stat().st_mtime * 1000))
        else:
            raise LogReadError(f"{path}: no such file or folder")
    return found


def model_label(spec: Any) -> str:
    """The model name, with the checkpoint for local models (every ``hf/local`` run is called ``hf/local``)."""
    path = (spec.model_args or {}).get("model_path")
    return f"{spec.model} ({path})" if path else spec.model


def _guard_score(scores: dict[str, Any] | None) -> Any:
    for score in (scores or {}).values():
        meta = score.metadata
        if isinstance(meta, dict) and {"gold", "pred", "benchmark", "task"} <= meta.keys():
            return score
    return None


def read_logs(paths: list[str | os.PathLike]) -> LogRecords:
    """Collect guard records from logs; unfinished logs and logs without guard scores are listed in ``skipped``."""
    from inspect_ai.log import read_eval_log

    logs = []
    for path, mtime in log_paths(paths):
        try:
            logs.append((path, mtime, read_eval_log(path)))
        except Exception as e:  # any reader failure means "not an Inspect log"
            raise LogReadError(f"{path}: not a readable Inspect log ({type(e).__name__}: {e})") from e
    if not logs:
        raise LogReadError(f"no Inspect logs (.eval/.json) in {', '.join(map(str, paths))}")
    out = LogRecords()
    # Oldest first, so later logs overwrite; `created` has one-second resolution, the file time breaks ties.
    for path, _, log in sorted(logs, key=lambda item: (item[2].eval.created, item[1])):
        if log.status != "success":
            out.skipped.append(f"{path}: status {log.status}")
            continue
        model, used = model_label(log.eval), False
        for sample in log.samples or []:
            score = _guard_score(sample.scores)
            if score is None:
                continue
            meta = score.metadata
            try:
                task = TaskType(meta["task"]).value
            except ValueError:
                raise LogReadError(f"{path}: sample {sample.id!r}: unknown task {meta['task']!r}") from None
            sid = str(meta.get("id") or sample.id)
            key = sid if sample.epoch == 1 else f"{sid}#{sample.epoch - 1}"
            out.records[model][key] = {"benchmark": meta["benchmark"], "task": task, "id": sid,
                                       "gold": meta["gold"], "pred": meta["pred"]}  # fmt: skip
            used = True
        if used:
            out.logs[model].append(path)
        else:
            out.skipped.append(f"{path}: no guard_scorer scores")
    return out


def summarize_logs(paths: list[str | os.PathLike], bootstrap: int = 1000) -> dict[str, Any]:
    """``{"models": {model: {"benchmarks", "averages", "logs"}}, "skipped": [...]}``, the metrics computed by
    :func:`guard_eval.runner.summarize` (the code behind ``guard-eval run``'s results.json)."""
    from guard_eval.runner import summarize

    found = read_logs(paths)
    models = {}
    for model, records in found.records.items():
        benchmarks, averages = summarize(list(records.values()), bootstrap)
        models[model] = {"benchmarks": benchmarks, "averages": averages, "logs": found.logs[model]}
    return {"models": models, "skipped": found.skipped}


def _benchmark_order() -> list[str]:
    from guard_eval import plugins

    return list(plugins.benchmarks())


def render_markdown(summary: dict[str, Any]) -> str:
    """The paper's tables (F1 per benchmark and sample-weighted average, one table per task type, a row per model)
    followed by each model's per-benchmark details."""
    from guard_eval.default_commands import _table

    order = _benchmark_order()

    def rank(name: str) -> tuple[int, str]:
        return (order.index(name) if name in order else len(order), name)

    models = summary["models"]
    parts = []
    for task in TaskType:
        names = sorted({b for m in models.values() for b, v in m["benchmarks"].items() if v["task"] == task.value}, key=rank)
        if not names:
            continue
        rows = []
        for model, m in models.items():
            avg = m["averages"].get(task.value)
            if avg is None:
                continue
            cells = [f"{m['benchmarks'][b]['f1']:.2f}" if b in m["benchmarks"] else "" for b in names]
            rows.append([model, *cells, f"{avg['f1']:.2f}"])
        parts.append(f"### {TASK_TITLES[task.value]} (F1, positive = {task.positive})\n\n"
                     + _table(rows, ["model", *names, "weighted avg"]))  # fmt: skip
    for model, m in models.items():
        rows = [
            [name, v["task"], v["n"], f"{v['f1']:.2f}", f"[{v['f1_ci'][0]:.1f}, {v['f1_ci'][1]:.1f}]" if v["f1_ci"] else "",
             f"{v['precision']:.2f}", f"{v['recall']:.2f}", f"{v['accuracy']:.2f}", f"{v['parse_failure_rate']:.1f}"]
            for name, v in sorted(m["benchmarks"].items(), key=lambda kv: rank(kv[0]))
        ]  # fmt: skip
        header = ["benchmark", "task", "n", "F1", "95% CI", "precision", "recall", "accuracy", "parse fail %"]
        parts.append(f"### {model}: details ({len(m['logs'])} log(s))\n\n" + _table(rows, header))
    return "\n\n".join(parts)
