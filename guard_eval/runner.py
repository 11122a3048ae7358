"""load -> prompt -> generate -> parse -> score -> report, writing results as it goes and resuming what was cut off.

Format of the two files: docs/results-format.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from guard_eval.benchmarks import Benchmark, Sample
from guard_eval.generation import Backend, GenerationConfig
from guard_eval.metrics import binary_metrics, weighted_average
from guard_eval.prompting import PromptVariant, build_prompt
from guard_eval.verdict import TaskType, parse_verdict

SCHEMA = "guard-bench/results/v1"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"


class ResumeMismatchError(RuntimeError):
    """The output dir holds a run with another model or settings; resuming would mix them."""


def resolve_benchmarks(names: Iterable[str]) -> list[Benchmark]:
    """Benchmark objects for names or suite names (``guardreasoner``, ``demo``, ``prompt``, ...)."""
    from guard_eval.default_benchmarks import SUITES
    from guard_eval import plugins

    known = plugins.benchmarks()
    out: list[Benchmark] = []
    for name in names:
        for n in SUITES.get(name, (name,)):
            if n not in known:
                raise KeyError(
                    f"unknown benchmark {n!r}; known: {', '.join(sorted(known))}; suites: {', '.join(sorted(SUITES))}"
                )
            if known[n] not in out:
                out.append(known[n])
    return out


def record_for(sample: Sample, output: str, sample_index: int | None = None) -> dict[str, Any]:
    verdict = parse_verdict(output)
    pred = verdict.label(sample.task)
    rec = {
        "benchmark": sample.benchmark,
        "task": sample.task.value,
        "id": sample.id,
        "prompt": sample.prompt,
        "response": sample.response,
        "gold": sample.label,
        "output": output,
        "verdict": verdict.to_dict(),
        "pred": pred,
        "correct": pred == sample.label,
    }
    if sample_index is not None:
        rec["sample"] = sample_index
    return rec


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a samples.jsonl; a truncated last line (a killed run) is dropped, other bad lines are errors."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if lineno >= len(lines) - 1:  # the last line: an interrupted write
                break
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg}); fix or delete the line to resume") from e
    return records


def summarize(records: Sequence[dict[str, Any]], bootstrap: int = 1000) -> tuple[dict, dict]:
    """Per-benchmark metrics and per-task weighted averages from sample records."""
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_bench[r["benchmark"]].append(r)
    benchmarks = {}
    for name, recs in by_bench.items():
        task = recs[0]["task"]
        m = binary_metrics([r["gold"] for r in recs], [r["pred"] for r in recs], task, bootstrap=bootstrap)
        benchmarks[name] = {"task": task, **m.to_dict()}
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


def _atomic_write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


@dataclass
class EvalRun:
    """One evaluation of one model into one output dir; call :meth:`run`."""

    backend: Backend
    benchmarks: list[Benchmark]
    output_dir: Path
    model_info: dict[str, Any]
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    prompt_variant: PromptVariant = "chat"
    data_dir: str | None = None
    source: str = "auto"
    limit: int | None = None
    sample_seed: int | None = None
    chunk_size: int | None = None  # samples generated between two writes; default 4 batches
    shard: tuple[int, int] | None = None  # (k, n): this process evaluates samples k, k+n, k+2n, ... (data parallel)
    progress: bool = True
    bootstrap: int = 1000

    def settings(self) -> dict[str, Any]:
        """What must match for a resume to be valid."""
        return {
            "model": self.model_info.get("path"),
            "prompt_variant": self.prompt_variant,
            "generation": {k: v for k, v in self.generation.to_dict().items() if k != "batch_size"},
            "limit": self.limit,
            "sample_seed": self.sample_seed,
            "shard": list(self.shard) if self.shard else None,
        }

    def _check_resume(self, results_path: Path) -> dict[str, Any] | None:
        if not results_path.exists():
            return None
        previous = json.loads(results_path.read_text())
        if previous.get("settings") != self.settings():
            raise ResumeMismatchError(
                f"{results_path} was written with other settings ({previous.get('settings')}); "
                f"use another --output dir (or --overwrite) instead of mixing runs"
            )
        return previous

    def run(self) -> dict[str, Any]:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        samples_path, results_path = self.output_dir / SAMPLES_FILE, self.output_dir / RESULTS_FILE
        previous = self._check_resume(results_path)
        records = read_records(samples_path)
        # Rewrite the file without a truncated tail so appends start on a clean line.
        with samples_path.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        done = {(r["id"], r.get("sample")) for r in records}
        expected = {}
        results = {
            "schema": SCHEMA,
            "model": self.model_info,
            "settings": self.settings(),
            "config": {"data_dir": self.data_dir, "source": self.source, "batch_size": self.generation.batch_size},
            "created": (previous or {}).get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        }

        def write(complete: bool) -> None:
            benchmarks, averages = summarize(records, self.bootstrap if complete else 0)
            for name, m in benchmarks.items():
                m["expected"] = expected.get(name)
            results.update(
                updated=datetime.now(UTC).isoformat(timespec="seconds"),
                complete=complete,
                benchmarks=benchmarks,
                averages=averages,
            )
            _atomic_write_json(results_path, results)

        n = self.generation.num_samples
        chunk = self.chunk_size or self.generation.batch_size * 4
        with samples_path.open("a", encoding="utf-8") as sink:
            for bench in self.benchmarks:
                samples = bench.load(self.data_dir, self.source, self.limit, self.sample_seed)
                if self.shard:
                    samples = samples[self.shard[0] :: self.shard[1]]
                expected[bench.name] = len(samples)
                todo = [s for s in samples if (s.id, 0 if n > 1 else None) not in done]
                bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=bench.name,
                           disable=not self.progress, unit="sample")  # fmt: skip
                for start in range(0, len(todo), chunk):
                    batch = todo[start : start + chunk]
                    prompts = [build_prompt(s.prompt, s.response, self.prompt_variant) for s in batch]
                    outputs = self.backend.generate(prompts, self.generation)
                    for sample, outs in zip(batch, outputs):
                        for i, text in enumerate(outs):
                            rec = record_for(sample, text, i if n > 1 else None)
                            records.append(rec)
                            sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())
                    write(complete=False)
                    bar.update(len(batch))
                bar.close()
        write(complete=True)
        return results


def merge_runs(shard_dirs: Sequence[Path], output_dir: Path, bootstrap: int = 1000) -> dict[str, Any]:
    """Merge the output dirs of data-parallel shards into one run (samples.jsonl + results.json)."""
    shards = [json.loads((Path(d) / RESULTS_FILE).read_text()) for d in shard_dirs]
    records = [r for d in shard_dirs for r in read_records(Path(d) / SAMPLES_FILE)]
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / SAMPLES_FILE).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    benchmarks, averages = summarize(records, bootstrap)
    for name, m in benchmarks.items():
        m["expected"] = sum(s["benchmarks"].get(name, {}).get("expected") or 0 for s in shards)
    settings = {**shards[0]["settings"], "shard": None}
    results = {
        **shards[0], "settings": settings, "shards": [str(d) for d in shard_dirs],
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": all(s.get("complete") for s in shards), "benchmarks": benchmarks, "averages": averages,
    }  # fmt: skip
    _atomic_write_json(output_dir / RESULTS_FILE, results)
    return results
