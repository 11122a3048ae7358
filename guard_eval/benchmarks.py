"""Benchmarks: where a test set lives, how its records become :class:`Sample` objects, and what its gold label is.

The built-in benchmarks are registered in :mod:`guard_eval.default_benchmarks`; plugins add their own through the
``guard_register_benchmarks`` hook. Data is read from the data directory (``--data-dir`` > ``$GUARD_DATA_DIR`` >
``../shared/data`` beside the working directory or the checkout), laid out like the shared folder::

    DATA_DIR/guardreasoner/benchmark/0_8_toxic_chat.json    GuardReasoner instruction format
    DATA_DIR/jbb/judge-comparison.csv                       JailbreakBench judge comparison
    DATA_DIR/wildguardtest/wildguardtest.jsonl              allenai/wildguardmix rows (also .json / .parquet)

or from the dataset hubs (``source="hub"``), with the hubs' own field names.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guard_eval.prompting import split_guardreasoner_input
from guard_eval.verdict import TaskType, normalize_label

DATA_DIR_ENV = "GUARD_DATA_DIR"
EMBEDDED_DIR = Path(__file__).parent / "data"
Source = Literal["auto", "local", "hub"]


class BenchmarkDataError(ValueError):
    """A data file is missing or malformed; the message names the benchmark, the file and the record."""


@dataclass(frozen=True)
class Sample:
    """One test item: a request, an optional response, and the gold label of the benchmark's task."""

    id: str
    benchmark: str
    task: TaskType
    prompt: str
    response: str | None
    label: str  # the task's vocabulary: harmful/unharmful or refusal/compliance
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class HubSource:
    path: str
    config: str | None = None
    split: str = "test"


# A record reader turns the raw rows of a file or hub split into (prompt, response, raw gold label, metadata) tuples.
RecordReader = Callable[[Iterable[dict[str, Any]], TaskType], Iterator[tuple[str, str | None, Any, dict[str, Any]]]]


@dataclass(frozen=True)
class Benchmark:
    """A registered test set. ``local`` is relative to the data directory (or absolute); ``embedded`` files ship
    inside the package."""

    name: str
    task: TaskType
    title: str
    reader: RecordReader
    local: str | None = None
    hub: HubSource | None = None
    embedded: bool = False
    expected_count: int | None = None
    description: str = ""
    # Published F1 (x100) by model name, for the docs' reproduction tables.
    published_f1: dict[str, float] = field(default_factory=dict)
    # Released predictions relative to the data dir, by model name (GuardReasoner test/ folder).
    reference_predictions: dict[str, str] = field(default_factory=dict)

    def local_path(self, data_dir: str | os.PathLike | None = None) -> Path | None:
        if self.local is None:
            return None
        if self.embedded:
            return EMBEDDED_DIR / self.local
        path = Path(self.local)
        if path.is_absolute():
            return path
        root = resolve_data_dir(data_dir)
        return root / path if root is not None else None

    def load(
        self,
        data_dir: str | os.PathLike | None = None,
        source: Source = "auto",
        limit: int | None = None,
        seed: int | None = None,
    ) -> list[Sample]:
        """Read the samples. ``auto`` prefers the local file and falls back to the hub.

        ``limit`` keeps the first N samples, or a random N when ``seed`` is given (same seed, same subset).
        """
        path = self.local_path(data_dir)
        if source == "local" or (source == "auto" and (path is not None and path.exists() or self.hub is None)):
            if path is None:
                raise BenchmarkDataError(
                    f"benchmark {self.name!r}: no data directory found; pass --data-dir or set ${DATA_DIR_ENV}"
                )
            rows, origin = read_rows(path, self.name), str(path)
        elif self.hub is not None:
            rows, origin = _read_hub(self), f"hub:{self.hub.path}/{self.hub.config or ''}[{self.hub.split}]"
        else:
            raise BenchmarkDataError(f"benchmark {self.name!r} has no hub source")
        samples = []
        try:
            for i, (prompt, response, gold, meta) in enumerate(self.reader(rows, self.task)):
                samples.append(
                    Sample(f"{self.name}-{i}", self.name, self.task, prompt, response, normalize_label(gold, self.task), meta)
                )
        except (ValueError, KeyError, TypeError) as e:
            raise BenchmarkDataError(
                f"benchmark {self.name!r}: record {len(samples)} of {origin} is malformed: {type(e).__name__}: {e}"
            ) from e
        return select(samples, limit, seed)


def select(samples: list[Sample], limit: int | None, seed: int | None = None) -> list[Sample]:
    if limit is None or limit >= len(samples):
        return samples
    if seed is None:
        return samples[:limit]
    keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in keep]


def _checkout_root() -> Path:
    return Path(__file__).resolve().parent.parent


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data directory: explicit argument, then ``$GUARD_DATA_DIR``, then a ``shared/data`` folder found beside
    the working directory or the checkout. ``None`` when nothing is found."""
    if data_dir is not None:
        return Path(data_dir).expanduser().absolute()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().absolute()
    for base in (Path.cwd(), _checkout_root()):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Raw rows from files and hubs
# ---------------------------------------------------------------------------------------------------------------------


def read_rows(path: Path, benchmark: str = "?") -> list[dict[str, Any]]:
    """Rows of a .json (list), .jsonl, .csv or .parquet file, with errors naming file and line."""
    if not path.exists():
        raise BenchmarkDataError(
            f"benchmark {benchmark!r}: data file not found: {path} "
            f"(pass --data-dir or set ${DATA_DIR_ENV}, or use --source hub)"
        )
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        # Split on "\n" only: some released files hold U+2028 inside strings, which str.splitlines() breaks on.
        for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BenchmarkDataError(f"benchmark {benchmark!r}: {path}:{lineno}: invalid JSON: {e.msg}") from e
        return rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BenchmarkDataError(
                f"benchmark {benchmark!r}: {path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
            ) from e
        if not isinstance(data, list):
            raise BenchmarkDataError(f"benchmark {benchmark!r}: {path}: expected a JSON list of records")
        return data
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise BenchmarkDataError(f"benchmark {benchmark!r}: {path}: unsupported file type {suffix!r}")


def _read_hub(benchmark: Benchmark) -> list[dict[str, Any]]:
    import datasets

    hub = benchmark.hub
    assert hub is not None
    try:
        return list(datasets.load_dataset(hub.path, hub.config, split=hub.split))
    except Exception as e:  # noqa: BLE001 -- network, auth (gated) and offline errors all end here
        raise BenchmarkDataError(
            f"benchmark {benchmark.name!r}: could not load {hub.path} ({hub.config}, {hub.split}) from the hub: {e}. "
            f"Download it once and point --data-dir / ${DATA_DIR_ENV} at a local copy."
        ) from e


# ---------------------------------------------------------------------------------------------------------------------
# Record readers, one per source format
# ---------------------------------------------------------------------------------------------------------------------


def _require(row: Any, *keys: str) -> None:
    if not isinstance(row, dict):
        raise TypeError(f"expected an object, got {type(row).__name__}")
    missing = [k for k in keys if k not in row]
    if missing:
        raise KeyError(f"missing field(s) {missing}; has {sorted(row)}")


def read_guardreasoner(rows, task):
    """GuardReasoner instruction format: ``{"instruction", "input", "output"}``; ``output`` is the gold label."""
    for row in rows:
        _require(row, "input", "output")
        prompt, response = split_guardreasoner_input(row["input"])
        yield prompt, response, row["output"], {}


_WILDGUARD_LABEL = {TaskType.PROMPT: "prompt_harm_label", TaskType.RESPONSE: "response_harm_label",
                    TaskType.REFUSAL: "response_refusal_label"}  # fmt: skip


def read_wildguard(rows, task):
    """allenai/wildguardmix ``wildguardtest``: rows without a label for this task are skipped (as in the paper)."""
    key = _WILDGUARD_LABEL[task]
    for row in rows:
        _require(row, "prompt", "response", key)
        if row[key] in (None, ""):
            continue
        if task is not TaskType.PROMPT and not row["response"]:
            continue
        meta = {k: row[k] for k in ("adversarial", "subcategory") if k in row}
        yield row["prompt"], row["response"] or None, row[key], meta


def read_jbb(rows, task):
    """JailbreakBench judge comparison: response harmfulness, gold = ``human_majority`` (1 = harmful)."""
    for row in rows:
        _require(row, "prompt", "target_response", "human_majority")
        meta = {k: row[k] for k in ("goal", "harmbench_cf", "gpt4_cf", "llamaguard2_cf", "llama3_cf") if k in row}
        yield row["prompt"], row["target_response"], int(row["human_majority"]), meta


def read_simple(rows, task):
    """Plain JSONL: ``{"prompt", "response" (optional), "label"}``; the format of the embedded demo sets."""
    for row in rows:
        _require(row, "prompt", "label")
        yield row["prompt"], row.get("response"), row["label"], {k: v for k, v in row.items() if k == "category"}
