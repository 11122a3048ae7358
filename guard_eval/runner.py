"""load -> prompt -> generate -> parse -> score, writing a run dir as it goes and resuming what was cut off.

The run-directory format (files, summary, merge) belongs to :mod:`guard_eval.results.rundir`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from guard_eval.benchmarks import Benchmark, Sample, resolve_data_dir
from guard_eval.generation import Backend, GenerationConfig, completions
from guard_eval.prompting import PromptVariant, build_prompt
from guard_eval.results.rundir import (
    RESULTS_FILE, SAMPLES_FILE, SCHEMA, input_hash, now, read_records, summarize, write_json_atomic, write_records,
)  # fmt: skip
from guard_eval.verdict import parse_verdict


class ResumeMismatchError(RuntimeError):
    """The output dir holds a run with another model, settings or inputs; resuming would mix them."""


def record_for(sample: Sample, output: str, sample_index: int | None = None) -> dict[str, Any]:
    verdict = parse_verdict(output)
    pred = verdict.label(sample.task)
    rec = {
        "benchmark": sample.benchmark,
        "task": sample.task.value,
        "id": sample.id,
        "input_hash": input_hash(sample.benchmark, sample.prompt, sample.response),
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


def count_tokens(backend: Backend, texts: list[str]) -> list[int | None]:
    """Generated tokens of each of ``texts`` by the backend's own tokenizer, in one batched call on every core
    (:func:`~guard_eval.generation.hf.encode_batch`); ``None`` for backends without one (APIs)."""
    from guard_eval.generation.hf import encode_batch

    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None and texts:
        try:
            return [len(ids) for ids in encode_batch(tokenizer, texts, add_special_tokens=False)]
        except Exception:  # a tokenizer that cannot count is no reason to lose a run
            pass
    return [None] * len(texts)


def describe_device(backend: Backend) -> str:
    """What generated the outputs, for the cost columns: an API model, a GPU name or ``cpu``."""
    if backend.name == "inspect":
        return f"API: {getattr(backend, 'model_path', '?')}"
    device = str(getattr(backend, "device", "") or "")
    try:
        import torch

        if torch.cuda.is_available() and device != "cpu":
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}" if torch.cuda.device_count() > 1 \
                else torch.cuda.get_device_name(0)  # fmt: skip
    except ImportError:
        pass
    return device or "cpu"


def _key(rec: dict[str, Any]) -> tuple[str, str, int | None]:
    """A record's identity on resume: id, content of its input (so other data cannot pass as done) and draw."""
    content = rec.get("input_hash") or input_hash(rec["benchmark"], rec.get("prompt"), rec.get("response"))
    return rec["id"], content, rec.get("sample")


def _keys(sample: Sample, n: int) -> list[tuple[str, str, int | None]]:
    content = input_hash(sample.benchmark, sample.prompt, sample.response)
    return [(sample.id, content, i if n > 1 else None) for i in range(n)]


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
    backend_options: dict[str, Any] = field(default_factory=dict)  # dtype, ...: they change outputs
    reasoning_budget: int | None = None  # cap reasoning at N tokens, then force the Answers block (generation/budget.py)

    def settings(self) -> dict[str, Any]:
        """What must match for a resume to be valid (docs/results-format.md, "Guarantees")."""
        root = resolve_data_dir(self.data_dir)
        return {
            "model": self.model_info.get("path"),
            "backend": self.model_info.get("backend", self.backend.name),
            "backend_options": {k: v for k, v in self.backend_options.items() if k != "device" and v is not None},
            "prompt_variant": self.prompt_variant,
            "generation": {k: v for k, v in self.generation.to_dict().items() if k != "batch_size"},
            "data_dir": str(root) if root else None,
            "source": self.source,
            "limit": self.limit,
            "sample_seed": self.sample_seed,
            "shard": list(self.shard) if self.shard else None,
            **({"reasoning_budget": self.reasoning_budget} if self.reasoning_budget is not None else {}),
        }

    def _check_resume(self, results_path: Path) -> dict[str, Any] | None:
        if not results_path.exists():
            return None
        previous = json.loads(results_path.read_text())
        old, new = previous.get("settings") or {}, self.settings()
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        if changed:
            diff = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise ResumeMismatchError(f"{results_path} was written with other settings ({diff}); use another --output "
                                      "dir (or --overwrite) instead of mixing runs")  # fmt: skip
        return previous

    def _load(self) -> dict[str, list[Sample]]:
        """Every benchmark's samples, read before anything is generated (a missing file fails before any work)."""
        out = {}
        for bench in self.benchmarks:
            samples = bench.load(self.data_dir, self.source, self.limit, self.sample_seed)
            out[bench.name] = samples[self.shard[0] :: self.shard[1]] if self.shard else samples
        return out

    def run(self) -> dict[str, Any]:
        loaded = self._load()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        samples_path, results_path = self.output_dir / SAMPLES_FILE, self.output_dir / RESULTS_FILE
        previous = self._check_resume(results_path)
        records = read_records(samples_path)
        n = self.generation.num_samples
        # every completion the run wants, in the data's order (a finished run's samples are rewritten in it)
        wanted = {k: i for i, k in enumerate(k for samples in loaded.values() for s in samples for k in _keys(s, n))}
        stale = [r["id"] for r in records if _key(r) not in wanted]
        if stale:
            raise ResumeMismatchError(
                f"{samples_path}: {len(stale)} records (first: {stale[0]!r}) hold inputs that the benchmark data no "
                "longer has (the data changed); use another --output dir (or --overwrite)"
            )
        write_records(samples_path, records)  # without a truncated tail, so appends start on a clean line
        done = {_key(r) for r in records}
        expected = {name: len(samples) * n for name, samples in loaded.items()}
        settings = self.settings()
        results = {"schema": SCHEMA, "model": self.model_info, "settings": settings,
                   "config": {"data_dir": settings["data_dir"], "source": self.source,
                              "batch_size": self.generation.batch_size},
                   "created": (previous or {}).get("created") or now()}  # fmt: skip

        # Cost of generation: measured wall time of backend.generate per item (across resumes), and the device.
        cost = {"generation_seconds": 0.0, "items": 0, "seconds_per_1k": None,
                **((previous or {}).get("cost") or {}), "device": describe_device(self.backend)}  # fmt: skip
        results["cost"] = cost

        checked: dict[str, bool | None] = {}  # each output's consistency check, kept across the summaries

        def complete() -> bool:
            return all(k in done for k in wanted)

        def write(final: bool = False) -> None:  # bootstrap intervals only in the final summary, not every chunk's
            finished = complete()
            scored, averages = summarize(records, self.bootstrap if finished and final else 0, checked)
            # in the run's benchmark order, whatever order the completions arrived in (a streamed run's partial files)
            benchmarks = {name: {**scored[name], "expected": n} for name, n in expected.items() if name in scored}
            results.update(updated=now(), complete=finished, benchmarks=benchmarks, averages=averages)
            write_json_atomic(results_path, results)

        chunk = self.chunk_size or self.generation.batch_size * 4
        # One queue over every benchmark: a benchmark's last, partial batch is filled up with the next one's items.
        todo = [s for bench in self.benchmarks for s in loaded[bench.name] if any(k not in done for k in _keys(s, n))]
        total = sum(map(len, loaded.values()))
        bar = tqdm(total=total, initial=total - len(todo), disable=not self.progress, unit="sample")
        pending: list[tuple[Sample, list[str]]] = []  # generated, not yet written

        def flush(sink, started: float) -> float:
            """Write the pending completions (generated since ``started``); returns when generating resumes."""
            cost["generation_seconds"] += time.perf_counter() - started
            bar.set_description(",".join(dict.fromkeys(s.benchmark for s, _ in pending)))
            cost["items"] += len(pending)
            cost["seconds_per_1k"] = 1000.0 * cost["generation_seconds"] / cost["items"]
            new = []
            for sample, outs in pending:
                for i, text in enumerate(outs):
                    rec = record_for(sample, text, i if n > 1 else None)
                    key = _key(rec)
                    if key not in done:  # not a completion kept from before the interruption
                        done.add(key)
                        new.append(rec)
            for rec, tokens in zip(new, count_tokens(self.backend, [rec["output"] for rec in new])):
                if tokens is not None:
                    rec["output_tokens"] = tokens
                records.append(rec)
                sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            write()
            bar.update(len(pending))
            pending.clear()
            return time.perf_counter()

        prompts = [build_prompt(s.prompt, s.response, self.prompt_variant) for s in todo]
        with samples_path.open("a", encoding="utf-8") as sink:
            started = time.perf_counter()
            for i, outs in completions(self.backend, prompts, self.generation, chunk, self.reasoning_budget):
                pending.append((todo[i], outs))
                if len(pending) >= chunk:
                    started = flush(sink, started)
            if pending:
                flush(sink, started)
        bar.close()
        if complete():
            # The data's order, whatever order completions came in (streamed, resumed): every reader's bootstrap
            # intervals and the benchmarks' order in results.json are then those of one run straight through.
            records.sort(key=lambda r: wanted[_key(r)])
            write_records(samples_path, records)
        write(final=True)
        return results
