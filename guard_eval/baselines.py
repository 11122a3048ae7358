"""Published guard-model F1 cells, shipped with the package, each with the source it was read from.

``guard_eval/data/published_baselines.csv`` is the project's transcription (2026-11-28) of two papers' tables:

* GuardReasoner (Liu et al., arXiv 2501.18492 v1), Tables 1-3, read from the table images of
  github.com/yueliu1999/GuardReasoner @bb7e686: 23 guards incl. GuardReasoner 1B/3B/8B, every cell incl.
  WildGuardTest, and the printed "Weighted Average";
* the Qwen3Guard Technical Report (arXiv 2510.14276 v1, github.com/QwenLM/Qwen3Guard @6a52eca), Tables 2/3/7/11/12:
  Qwen3Guard-Gen/Stream 0.6B/4B/8B in strict and loose mode, and the baselines it lists (LlamaGuard3-8B,
  LlamaGuard4-12B, WildGuard-7B, ShieldGemma-9B/27B, NemoGuard-8B, PolyGuard-Qwen-7B), with the printed "Avg.".

Columns ``model,task,benchmark,f1,source,table,note``; ``f1`` is the string as printed (``09.60`` kept). Nothing in
it was computed; the averages were only recomputed to check the transcription (tests/test_baselines.py). Names are not
matched up across sources: the same guard evaluated by both papers is two baselines, told apart by their source.

A baseline is named by a slug of the printed model name plus, for Qwen3Guard, its mode: ``guardreasoner-8b``,
``llama-guard-3-8b``, ``qwen3guard-8b-gen-strict``. A name without the mode (``qwen3guard-8b``, ``qwen3guard-8b-gen``)
means both modes, as two rows; ``@guardreasoner`` / ``@qwen3guard`` picks one source (``wildguard-7b@qwen3guard``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

AVERAGE_BENCHMARKS = ("avg_weighted", "avg_as_published")
SOURCES = {"GuardReasoner": "guardreasoner", "Qwen3Guard": "qwen3guard"}  # source text prefix -> short key


@dataclass(frozen=True)
class PublishedCell:
    model: str
    task: str
    benchmark: str  # a project benchmark name, or avg_weighted / avg_as_published
    f1_text: str  # as printed
    source: str
    table: str
    note: str

    @property
    def f1(self) -> float:
        return float(self.f1_text)

    @property
    def mode(self) -> str | None:
        """strict / loose for Qwen3Guard's own rows, else None."""
        m = re.match(r"(strict|loose) mode", self.note)
        return m.group(1) if m else None

    @property
    def source_key(self) -> str:
        return next((v for k, v in SOURCES.items() if self.source.startswith(k)), "other")

    @property
    def citation(self) -> str:
        """Short provenance for a table footnote: the paper and table."""
        paper = self.source.split(",", 1)[0].split(":", 1)[0]
        arxiv = re.search(r"arXiv [\w.]+", self.source)
        return f"{paper} ({arxiv.group(0) if arxiv else self.source_key}), {self.table.split(' (')[0]}"


@dataclass
class PublishedBaseline:
    """One published row: a model (in one mode) as one paper printed it."""

    name: str  # slug, e.g. guardreasoner-8b, qwen3guard-8b-gen-strict
    model: str  # as printed
    source_key: str
    mode: str | None
    cells: dict[str, PublishedCell] = field(default_factory=dict)  # benchmark -> cell (no averages)
    averages: dict[str, PublishedCell] = field(default_factory=dict)  # task -> the printed average cell

    @property
    def display_name(self) -> str:
        return self.model + (f" ({self.mode})" if self.mode else "")


def slug(model: str) -> str:
    """
    >>> slug("GuardReasoner 8B"), slug("LLaMA Guard 3 8B"), slug("Qwen3Guard-0.6B-Gen"), slug("OpenAI Moderation (API)")
    ('guardreasoner-8b', 'llama-guard-3-8b', 'qwen3guard-0.6b-gen', 'openai-moderation-api')
    """
    return re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-")


@lru_cache(maxsize=1)
def load_published_cells() -> tuple[PublishedCell, ...]:
    """Every shipped cell; raises if one lacks a number or a source (never a number without a source)."""
    text = resources.files("guard_eval").joinpath("data/published_baselines.csv").read_text(encoding="utf-8")
    cells = []
    for i, row in enumerate(csv.DictReader(text.splitlines()), 2):
        if not (row.get("source") or "").strip() or not (row.get("table") or "").strip():
            raise ValueError(f"published_baselines.csv:{i}: a cell without a source ({row.get('model')})")
        float(row["f1"])  # a printed number, or the file is broken
        cells.append(PublishedCell(row["model"], row["task"], row["benchmark"], row["f1"], row["source"],
                                   row["table"], row["note"]))  # fmt: skip
    return tuple(cells)


@lru_cache(maxsize=1)
def published_baselines() -> dict[str, PublishedBaseline]:
    """``{name: PublishedBaseline}``; names are unique (the source is appended where two papers share a model)."""
    rows: dict[tuple[str, str, str | None], PublishedBaseline] = {}
    for cell in load_published_cells():
        if cell.benchmark not in AVERAGE_BENCHMARKS:
            mode, key = cell.mode, (cell.model, cell.source_key, cell.mode)
            name = slug(cell.model) + (f"-{mode}" if mode else "")
            rows.setdefault(key, PublishedBaseline(name, cell.model, cell.source_key, mode)).cells[cell.benchmark] = cell
    for cell in load_published_cells():  # an average goes to every mode's row (Qwen3Guard's "Avg.*" is over both)
        if cell.benchmark in AVERAGE_BENCHMARKS:
            for (model, src, _), row in rows.items():
                if model == cell.model and src == cell.source_key:
                    row.averages[cell.task] = cell
    names: dict[str, list[PublishedBaseline]] = {}
    for row in rows.values():
        names.setdefault(row.name, []).append(row)
    out: dict[str, PublishedBaseline] = {}
    for name, group in names.items():
        for row in group:
            if len(group) > 1:
                row.name = f"{name}@{row.source_key}"
            out[row.name] = row
    return out


def find_published(name: str) -> list[PublishedBaseline]:
    """The published rows ``name`` stands for (see the module docstring); ``[]`` when none."""
    name = name.lower()
    base, _, source = name.partition("@")
    table = published_baselines()
    if name in table:
        return [table[name]]

    def short(row: PublishedBaseline) -> set[str]:
        plain = row.name.split("@")[0]
        stem = plain.removesuffix(f"-{row.mode}") if row.mode else plain
        return {plain, stem, stem.removesuffix("-gen")}

    return [r for r in table.values() if base in short(r) and (not source or r.source_key == source)]


def published_cell(model: str, benchmark: str, mode: str | None = None) -> PublishedCell:
    """The cell a paper printed for ``model`` (as printed) on ``benchmark`` (or ``avg_weighted``...)."""
    for cell in load_published_cells():
        if cell.model == model and cell.benchmark == benchmark and cell.mode == mode:
            return cell
    raise KeyError(f"no published cell for {model!r} on {benchmark!r}" + (f" ({mode})" if mode else ""))
