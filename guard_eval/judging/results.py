"""``guard-eval judge``: score every trace of a results dir with a judge, next to the results.

Writes ``judged.jsonl`` (one line per sample: id, benchmark, task, the four components, total, error, raw) into the
run dir and adds a ``reasoning_quality`` summary to ``results.json`` (only that key; the rest is left as it is). A
re-run with the same judge resumes: samples already in the file are skipped (``overwrite=True`` starts again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guard_eval.judging import JudgeInput, JudgeScore, get_judge
from guard_eval.judging.rubric import summarize

JUDGED_FILE = "judged.jsonl"


def _key(record: dict[str, Any]) -> tuple[str, int | None]:
    return record["id"], record.get("sample")


def judge_run(
    run_dir: str | Path,
    judge: str = "heuristic",
    options: dict[str, Any] | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    chunk_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Judge the samples of ``run_dir`` (a ``guard-eval run`` output) and return the summary written to results.json."""
    from guard_eval.results.rundir import RESULTS_FILE, SAMPLES_FILE, read_records, write_json_atomic

    run_dir = Path(run_dir)
    results_path, samples_path = run_dir / RESULTS_FILE, run_dir / SAMPLES_FILE
    if not results_path.exists() or not samples_path.exists():
        raise FileNotFoundError(
            f"{run_dir}: expected {RESULTS_FILE} and {SAMPLES_FILE} (a `guard-eval run` output dir)"
        )
    records = read_records(samples_path)
    if not records:
        raise ValueError(f"{samples_path}: no samples to judge")
    items = []
    for i, rec in enumerate(records, 1):
        try:
            items.append(JudgeInput.from_record(rec))
            _key(rec)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{samples_path}: record {i}: missing field {e}") from e
    out_path = Path(output) if output else run_dir / JUDGED_FILE
    options = dict(options or {})
    previous = [] if overwrite else read_records(out_path)
    if previous and any(r.get("judge") != judge or r.get("judge_options", {}) != _jsonable(options) for r in previous):
        raise ValueError(f"{out_path} holds scores of another judge or options; pass --overwrite or another --output")
    done = {_key(r) for r in previous}
    todo = [(rec, item) for rec, item in zip(records, items) if _key(rec) not in done]
    scorer = get_judge(judge, **options) if todo else None
    with out_path.open("a" if previous else "w", encoding="utf-8") as sink:
        for start in range(0, len(todo), chunk_size):
            batch = todo[start : start + chunk_size]
            for (rec, _), score in zip(batch, scorer.score([item for _, item in batch])):
                row = {"id": rec["id"], "benchmark": rec.get("benchmark"), "task": rec["task"], "judge": judge,
                       "judge_options": _jsonable(options), **score.to_dict()}  # fmt: skip
                if rec.get("sample") is not None:
                    row["sample"] = rec["sample"]
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            if progress:
                print(f"judged {min(start + chunk_size, len(todo))}/{len(todo)}", flush=True)
    judged = {_key(r): r for r in read_records(out_path)}
    ordered = [judged[_key(rec)] for rec in records if _key(rec) in judged]
    scores = [
        JudgeScore(**{k: r[k] for k in ("correctness", "coherence", "relevance", "specificity", "error")})
        for r in ordered
    ]
    summary = {
        "judge": judge,
        "options": _jsonable(options),
        "file": out_path.name if out_path.parent.resolve() == run_dir.resolve() else str(out_path),
        **summarize(scores, [r.get("benchmark") or "?" for r in ordered]),
    }
    summary["by_benchmark"] = summary.pop("by_group")
    results = json.loads(results_path.read_text(encoding="utf-8"))  # re-read: a run may have rewritten it meanwhile
    results["reasoning_quality"] = summary
    write_json_atomic(results_path, results)
    return summary


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    """The options as written (and compared on resume): JSON values, secret-looking keys redacted."""
    from guard_eval.redact import redact

    return redact(json.loads(json.dumps(options, default=str)))
