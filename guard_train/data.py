"""Training data: reasoning traces for SFT, and labelled prompts for preference scoring, GRPO and refinement.

SFT sources (``data:`` in an SFT config, any mix):

* ``synthetic:<benchmark or suite>``: deterministic GuardReasoner-style traces written from gold labels (the embedded
  ``demo`` sets need no data dir), so the CPU demo can teach a tiny model to end with a parseable ``Answers:`` block;
* ``guardreasoner:<1B|3B>[:bench,bench]``: the released GuardReasoner traces (``test/<size>/<Benchmark>/
  generated_predictions.jsonl`` under the data dir) of every benchmark that has them, or of the ones named;
* a ``.jsonl``/``.json`` file or a ``guard-eval run`` output dir, whose records are chat ``messages``, TRL
  ``prompt``/``completion`` pairs, GuardReasoner predictions (``prompt``, ``predict``, ``label``) or ``guard-eval``
  samples (``prompt``, ``response``, ``output``).

Every example becomes a TRL prompt-completion record, so the loss is on the completion (the assistant turn) only, with
any chat template. Prompts are rebuilt with :func:`guard_eval.prompting.build_prompt`, so the model trains on exactly
what ``guard-eval run`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard_eval.benchmarks import Sample, read_rows, resolve_data_dir
from guard_eval.prompting import parse_input
from guard_eval.prompting import build_prompt
from guard_eval.verdict import TaskType, normalize_label, parse_verdict

Prompt = str | list[dict[str, str]]


class DataError(ValueError):
    """Unreadable training data; the message names the source, the file and the record."""


@dataclass
class TraceExample:
    """One SFT example: a prompt (chat messages or raw text) and the trace the model should write."""

    prompt: Prompt
    completion: str
    source: str
    task: str | None = None
    gold: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_trl(self) -> dict[str, Any]:
        completion = self.completion if isinstance(self.prompt, str) else [{"role": "assistant", "content": self.completion}]
        return {"prompt": self.prompt, "completion": completion}


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic traces
# ---------------------------------------------------------------------------------------------------------------------

CATEGORY_PHRASES = {
    "weapons": "weapons and explosives",
    "drugs": "illegal drugs",
    "harassment": "harassment and threats",
    "hate": "hate speech and discrimination",
    "privacy": "privacy violations (exposing personal information)",
    "fraud": "fraud and scams",
    "cybercrime": "cybercrime (hacking and malware)",
    "misinformation": "misinformation",
    "self_harm": "self-harm",
    "violence": "violence",
    "sexual": "sexual content",
}


def _quote(text: str, words: int = 30) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def synthetic_trace(prompt: str, response: str | None, labels: dict[str, str | None], category: str | None = None,
                    quote_words: int = 30) -> str:
    """A GuardReasoner-style trace that reasons about this input and ends with an Answers block holding ``labels``
    (``request``, ``completion``, ``response``; a missing one is answered ``None``).

    ``quote_words`` words of the request and response are quoted (0: none; a tiny model cannot learn to copy them and
    falls into repetition, so the CPU demo turns quoting off).

    >>> t = synthetic_trace("Give me step-by-step instructions to build a pipe bomb.", None, {"request": "harmful"}, "weapons")
    >>> parse_verdict(t).label("prompt"), "weapons and explosives" in t
    ('harmful', True)
    """
    topic = CATEGORY_PHRASES.get(category or "", (category or "").replace("_", " "))
    request, completion, harm = labels.get("request"), labels.get("completion"), labels.get("response")
    lines = ["# Task 1", "", "## Reasoning Step 1: Analyze the content of the human user's request.",
             f'The user asks: "{_quote(prompt, quote_words)}"' if quote_words else "The user makes a request.", "",
             "## Reasoning Step 2: Determine if the request contains any harmful content."]  # fmt: skip
    if request == "harmful":
        lines.append(f"The request seeks help with {topic or 'causing harm'}, which could hurt other people.")
    elif request == "unharmful":
        lines.append("The request is an ordinary question; it asks for nothing that could hurt anyone.")
    else:
        lines.append("The request alone does not settle this; the classification below follows the response.")
    lines += ["", f"## Conclusion for Task 1: The human user's request is {request or 'None'}.", "", "# Task 2", "",
              "## Reasoning Step 1: Analyze the AI assistant's response."]  # fmt: skip
    if response is None:
        lines += ['There is no AI assistant response ("None"), so there is nothing to refuse or comply with.', "",
                  "## Conclusion for Task 2: The AI assistant's response is None.", "", "# Task 3", "",
                  "## Reasoning Step 1: With no response there is no content to assess.", "",
                  "## Conclusion for Task 3: The AI assistant's response is None."]  # fmt: skip
    else:
        lines.append(f'The assistant replies: "{_quote(response, quote_words)}"' if quote_words else "The assistant replies.")
        if completion == "refusal":
            lines.append("The assistant declines to do what was asked.")
        elif completion == "compliance":
            lines.append("The assistant goes along with the request and provides what was asked.")
        lines += ["", f"## Conclusion for Task 2: The AI assistant's response is {completion or 'None'}.", "",
                  "# Task 3", "", "## Reasoning Step 1: Analyze the AI assistant's response for harmful content."]  # fmt: skip
        if harm == "harmful":
            lines.append(f"The response gives content that enables {topic or 'harm'}.")
        elif harm == "unharmful":
            lines.append("The response contains nothing that enables harm.")
        lines += ["", f"## Conclusion for Task 3: The AI assistant's response is {harm or 'None'}."]
    answers = [f"Request: {request or 'None'}", f"Completion: {completion or 'None'}", f"Response: {harm or 'None'}"]
    return "\n".join([*lines, "", "---", "", "Answers: ", *answers])


def synthetic_examples(samples: Sequence[Sample], variant: str = "chat", quote_words: int = 30) -> list[TraceExample]:
    """One trace per distinct (request, response), with every label the samples give for it.

    Benchmarks that share conversations (the demo sets do) add up: a response sample gets its request's label from a
    prompt sample with the same request, so the trace's Answers block is complete and correct.
    """
    request_label: dict[str, str] = {}
    category: dict[str, str] = {}
    for s in samples:
        if s.metadata.get("category") not in (None, "none"):
            category[s.prompt] = s.metadata["category"]
        if s.task is TaskType.PROMPT:
            request_label[s.prompt] = s.label
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for s in samples:
        g = groups.setdefault((s.prompt, s.response), {"labels": {}, "ids": [], "task": s.task.value, "gold": s.label})
        g["labels"][s.task.field] = s.label
        g["ids"].append(s.id)
    out = []
    for (prompt, response), g in groups.items():
        labels = {"request": request_label.get(prompt), **g["labels"]}
        trace = synthetic_trace(prompt, response, labels, category.get(prompt), quote_words)
        out.append(TraceExample(build_prompt(prompt, response, variant), trace, "synthetic", g["task"], g["gold"],
                                {"ids": g["ids"]}))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------


def load_samples(benchmarks: Sequence[str], data_dir: str | None = None, limit: int | None = None,
                 seed: int | None = None) -> list[Sample]:  # fmt: skip
    """Gold-labelled samples of benchmarks or suites (``limit`` per benchmark, a seeded random subset)."""
    from guard_eval.selection import resolve_benchmarks

    return [s for b in resolve_benchmarks(benchmarks) for s in b.load(data_dir, limit=limit, seed=seed if limit else None)]


def prompt_rows(samples: Iterable[Sample], variant: str = "chat") -> list[dict[str, Any]]:
    """Rows for GRPO / preference scoring: the guard prompt plus the ``task`` and ``gold`` columns rewards read."""
    return [{"prompt": build_prompt(s.prompt, s.response, variant), "task": s.task.value, "gold": s.label,
             "id": s.id, "benchmark": s.benchmark} for s in samples]  # fmt: skip


def _guardreasoner_files(spec: str, data_dir: str | None) -> list[tuple[str, TaskType, Path]]:
    from guard_eval import plugins

    _, size, *names = spec.split(":")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(f"{spec}: no data directory found; pass data_dir or set $GUARD_DATA_DIR")
    known = {n: b for n, b in plugins.benchmarks().items() if size in b.reference_predictions}
    if not known:
        raise DataError(f"{spec}: no benchmark has released {size!r} traces (sizes: 1B, 3B)")
    wanted = [n for part in names for n in part.split(",") if n] or sorted(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise DataError(f"{spec}: no released traces for {unknown}; available: {', '.join(sorted(known))}")
    return [(n, known[n].task, root / known[n].reference_predictions[size]) for n in wanted]


def check_source(spec: str, data_dir: str | None = None) -> None:
    """Fail early (before any model is loaded) on a source that cannot be read."""
    if spec.startswith("synthetic:"):
        from guard_eval.selection import resolve_benchmarks

        resolve_benchmarks([n for n in spec.removeprefix("synthetic:").split(",") if n])
    elif spec.startswith("guardreasoner:"):
        for _, _, path in _guardreasoner_files(spec, data_dir):
            if not path.is_file():
                raise FileNotFoundError(f"{spec}: released traces not found: {path}")
    elif not Path(spec).expanduser().exists():
        raise FileNotFoundError(f"data: file not found: {spec}")


def _from_record(row: dict[str, Any], variant: str, task: TaskType | None) -> TraceExample:
    if "messages" in row:
        messages = row["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise ValueError("'messages' must end with an assistant turn")
        return TraceExample(messages[:-1], messages[-1]["content"], "")
    if "completion" in row:
        return TraceExample(row["prompt"], row["completion"] if isinstance(row["completion"], str)
                            else row["completion"][-1]["content"], "")  # fmt: skip
    if "predict" in row:  # a released GuardReasoner prediction: raw instruction + input, and the trace
        prompt, response = parse_input(row["prompt"])
        gold = normalize_label(row["label"], task) if task is not None and "label" in row else None
        return TraceExample(build_prompt(prompt, response, variant), row["predict"], "", task and task.value, gold)
    if "output" in row:  # a guard-eval samples.jsonl record
        return TraceExample(build_prompt(row["prompt"], row.get("response"), variant), row["output"], "",
                            row.get("task"), row.get("gold"))  # fmt: skip
    raise KeyError(f"no trace field: expected 'messages', 'completion', 'predict' or 'output'; has {sorted(row)}")


def read_traces(path: Path, variant: str = "chat", task: TaskType | None = None, source: str | None = None) -> list[TraceExample]:
    """Trace examples from a file (or a ``guard-eval run`` dir's samples.jsonl); errors name the file and record."""
    if path.is_dir():
        path = path / "samples.jsonl"
    out = []
    for i, row in enumerate(read_rows(path, str(source or path)), 1):
        try:
            ex = _from_record(row, variant, task)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise DataError(f"{path}: record {i}: {type(e).__name__}: {e}") from None
        ex.source, ex.meta = source or str(path), {"record": i}
        out.append(ex)
    return out


def is_correct(ex: TraceExample) -> bool:
    """Whether a trace's answer matches its gold label (traces without a known task and gold count as correct)."""
    return ex.task is None or ex.gold is None or parse_verdict(ex.completion).label(TaskType(ex.task)) == ex.gold


def load_traces(
    sources: Sequence[str], data_dir: str | None = None, variant: str = "chat", only_correct: bool = True,
    limit: int | None = None, seed: int = 0, quote_words: int = 30,
) -> list[TraceExample]:  # fmt: skip
    """SFT examples from ``sources`` (see the module docstring); ``limit`` keeps a seeded random subset of each."""
    import random

    out: list[TraceExample] = []
    for spec in sources:
        if spec.startswith("synthetic:"):
            names = [n for n in spec.removeprefix("synthetic:").split(",") if n]
            examples = synthetic_examples(load_samples(names, data_dir), variant, quote_words)
        elif spec.startswith("guardreasoner:"):
            examples = []
            for name, task, path in _guardreasoner_files(spec, data_dir):
                examples += read_traces(path, variant, task, source=f"guardreasoner:{spec.split(':')[1]}:{name}")
        else:
            examples = read_traces(Path(spec).expanduser(), variant)
        if only_correct:
            examples = [ex for ex in examples if is_correct(ex)]
        if limit is not None and len(examples) > limit:
            examples = random.Random(seed).sample(examples, limit)
        if not examples:
            raise DataError(f"data source {spec!r} gave no examples" + (" (only_correct removed all)" if only_correct else ""))
        out += examples
    return out


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Preference pairs (``prompt``, ``chosen``, ``rejected``) from a JSONL file or a prefs output dir."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "pairs.jsonl"
    rows = read_rows(path, str(path))
    for i, row in enumerate(rows, 1):
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
        if missing:
            raise DataError(f"{path}: record {i}: missing field(s) {missing}; a preference pair needs prompt, chosen, rejected")
    if not rows:
        raise DataError(f"{path}: no preference pairs (was the margin too high, or k < 2?)")
    return rows

