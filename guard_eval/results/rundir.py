"""The run directory: ``results.json`` + ``samples.jsonl`` (docs/results-format.md) — read, written atomically,
summarized, merged from shards, and set aside (never deleted) when a run is replaced."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

SCHEMA = "guard-bench/results/v1"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
REPLACED_DIR = ".replaced"  # where --overwrite moves the previous run's files until the new run has completed
RUN_FILES = (RESULTS_FILE, SAMPLES_FILE, "judged.jsonl")  # what a run (and `guard-eval judge`) writes


class RunDirError(ValueError):
    """An output dir that cannot hold (or be replaced by) a run; the message names it."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def input_hash(benchmark: str, prompt: str | None, response: str | None) -> str:
    """Content key of a sample's input: a resumed run matches records by what was asked, not by position."""
    return hashlib.sha256(json.dumps([benchmark, prompt, response], ensure_ascii=False).encode()).hexdigest()[:16]


def read_records(path: Path, strict: bool = False) -> list[dict[str, Any]]:
    """Records of a JSONL file. A truncated last line (a killed run) is dropped unless ``strict`` (files made by
    others: every line must be a JSON object); other bad lines are errors naming ``file:line``."""
    if not path.exists():
        return []
    if path.is_dir():
        raise RunDirError(f"{path}: is a directory, not a JSONL file")
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if not strict and lineno >= len(lines) - 1:  # the last line: an interrupted write
                break
            raise RunDirError(f"{path}:{lineno}: invalid JSON ({e.msg}); fix or delete the line") from e
        if strict and not isinstance(rec, dict):
            raise RunDirError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        records.append(rec)
    return records


def _replace(path: Path, fill: Callable[[IO[str]], object]) -> None:
    """Write ``path`` through a temporary file beside it and a rename: readers, and a kill mid-write, see the old file
    or the new one, never half of one (the temporary file goes if ``fill`` fails). Readable by all, like every
    other output."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    _replace(path, lambda f: f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` in one step; secret-looking keys are redacted (guard_eval.redact)."""
    from guard_eval.redact import redact

    data = redact(data)
    _replace(path, lambda f: json.dump(data, f, indent=2))


def summarize(records: Sequence[dict[str, Any]], bootstrap: int = 1000,
              checked: dict[str, bool | None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Per-benchmark metrics and per-task weighted averages from sample records (``benchmark``, ``task``, ``gold``,
    ``pred``): the one place metrics of a run are computed.

    ``checked`` keeps each output's consistency check (output -> contradicts) between calls: a run summarizes its
    records after every chunk, and checking every output again each time made a suite's summaries quadratic (26 s of
    a 127 s run's host time on a CPU)."""
    from guard_eval.consistency import contradicts
    from guard_eval.metrics import binary_metrics, consistency_metrics, weighted_average
    from guard_eval.verdict import TaskType

    checked = {} if checked is None else checked
    for r in records:
        if r.get("output") is not None and r["output"] not in checked:
            checked[r["output"]] = contradicts(r["output"])
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_bench[r["benchmark"]].append(r)
    benchmarks = {}
    for name, recs in by_bench.items():
        task = recs[0]["task"]
        m = binary_metrics([r["gold"] for r in recs], [r["pred"] for r in recs], task, bootstrap=bootstrap)
        benchmarks[name] = {"task": task, **m.to_dict(), **consistency_metrics([checked[r["output"]] if
                            r.get("output") is not None else None for r in recs])}  # fmt: skip
        tokens = [r["output_tokens"] for r in recs if r.get("output_tokens") is not None]
        if tokens:
            benchmarks[name]["mean_output_tokens"] = sum(tokens) / len(tokens)
    averages = {}
    for task in TaskType:
        group = {k: v for k, v in benchmarks.items() if v["task"] == task.value}
        if group:
            averages[task.value] = {
                "f1": weighted_average(group, "f1"),
                "accuracy": weighted_average(group, "accuracy"),
                "n": sum(v["n"] for v in group.values()),
                "benchmarks": sorted(group),
            }
    return benchmarks, averages


def run_files(output: Path) -> list[Path]:
    """What ``guard-eval run`` (and ``judge``) wrote into ``output``."""
    return [p for p in [*(output / f for f in RUN_FILES), *output.glob("shard-*-of-*")] if p.exists()]


def set_aside(output: Path, owned: Callable[[Path], list[Path]] = run_files, keep: tuple[str, ...] = ("tiny-model",),
              what: str = f"a guard-eval run folder (no {RESULTS_FILE})") -> Path | None:
    """Move what an earlier run wrote (``owned(output)``) into ``OUTPUT/.replaced/<time>/``; nothing else is touched.
    A folder holding other files but nothing of ours is refused. Returns the folder to delete once the new run has
    completed (:func:`drop_replaced`)."""
    if not output.exists():
        return None
    if not output.is_dir():
        raise RunDirError(f"{output}: exists and is not a directory")
    paths = owned(output)
    if not paths:
        if any(p.name not in (REPLACED_DIR, *keep) for p in output.iterdir()):
            raise RunDirError(f"{output}: not {what}; refusing to overwrite it")
        return None
    aside = output / REPLACED_DIR / now().replace(":", "")
    aside.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.move(str(p), aside / p.name)
    return aside


def drop_replaced(aside: Path | None) -> None:
    """After the replacement run has completed: remove what :func:`set_aside` kept."""
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
        if aside.parent.name == REPLACED_DIR and not any(aside.parent.iterdir()):
            aside.parent.rmdir()


def merge_runs(shard_dirs: Sequence[Path], output_dir: Path, bootstrap: int = 1000) -> dict[str, Any]:
    """Merge the output dirs of data-parallel shards into one run (samples.jsonl + results.json)."""
    shards = [json.loads((Path(d) / RESULTS_FILE).read_text()) for d in shard_dirs]
    records = [r for d in shard_dirs for r in read_records(Path(d) / SAMPLES_FILE)]
    output_dir.mkdir(parents=True, exist_ok=True)
    write_records(output_dir / SAMPLES_FILE, records)
    benchmarks, averages = summarize(records, bootstrap)
    for name, m in benchmarks.items():
        m["expected"] = sum(s["benchmarks"].get(name, {}).get("expected") or 0 for s in shards)
    results = {**shards[0], "settings": {**shards[0]["settings"], "shard": None}, "shards": [str(d) for d in shard_dirs],
               "updated": now(), "complete": all(s.get("complete") for s in shards), "benchmarks": benchmarks,
               "averages": averages}  # fmt: skip
    write_json_atomic(output_dir / RESULTS_FILE, results)
    return results
