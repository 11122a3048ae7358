"""lm-evaluation-harness hooks for the guard-bench tasks: data, prompt, scoring, all delegated to guard_eval.

* data: :meth:`guard_eval.benchmarks.Benchmark.load` of the registered benchmark named by ``dataset_kwargs.benchmark``,
  from ``--metadata '{"data_dir": "..."}'``, else ``$GUARD_DATA_DIR``, else ``../shared/data`` (never cwd-relative
  YAML paths); plugin benchmarks work the same way;
* prompt: :func:`guard_eval.prompting.build_prompt`. Its ``raw`` text is the ``chat`` variant's user turn, so
  ``--apply_chat_template`` gives the ``chat`` variant and no template gives GuardReasoner's raw prompt;
* scoring: :func:`guard_eval.verdict.parse_verdict` per sample and :func:`guard_eval.metrics.binary_metrics` per task,
  so lm-eval, Inspect and ``guard-eval run`` report the same F1 for the same outputs.
"""

from __future__ import annotations

from typing import Any

from guard_eval.metrics import binary_metrics
from guard_eval.prompting import build_prompt
from guard_eval.verdict import parse_verdict

# A scored item: (gold label, predicted label or None, task type). Each metric's aggregation reads the whole list.
Item = tuple[str, str | None, str]


def load_benchmark(benchmark: str, data_dir: str | None = None, **_lm_eval_metadata: Any):
    """The benchmark as a ``DatasetDict`` with one ``test`` split (lm-eval's ``custom_dataset`` hook).

    lm-eval passes the task metadata and the model arguments as keyword arguments too; they are ignored.
    """
    import datasets

    from guard_eval import plugins

    known = plugins.benchmarks()
    if benchmark not in known:
        raise KeyError(f"unknown benchmark {benchmark!r} in dataset_kwargs; registered: {', '.join(sorted(known))}")
    rows = [
        {"id": s.id, "benchmark": s.benchmark, "task": s.task.value, "prompt": s.prompt,
         "response": s.response, "label": s.label}
        for s in known[benchmark].load(data_dir)
    ]  # fmt: skip
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return build_prompt(doc["prompt"], doc["response"], "raw")  # type: ignore[return-value]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Item]:
    """Parse the trace once; every metric gets the same (gold, pred, task) item."""
    item = (doc["label"], parse_verdict(results[0]).label(doc["task"]), doc["task"])
    return {"f1": item, "precision": item, "recall": item, "accuracy": item, "parse_failure_rate": item}


def _metrics(items: list[Item]):
    tasks = {task for _, _, task in items}
    if len(tasks) != 1:
        raise ValueError(f"a guard task scores one task type, got {sorted(tasks)}")
    return binary_metrics([g for g, _, _ in items], [p for _, p, _ in items], tasks.pop(), bootstrap=0)


def f1(items: list[Item]) -> float:
    return _metrics(items).f1


def precision(items: list[Item]) -> float:
    return _metrics(items).precision


def recall(items: list[Item]) -> float:
    return _metrics(items).recall


def accuracy(items: list[Item]) -> float:
    return _metrics(items).accuracy


def parse_failure_rate(items: list[Item]) -> float:
    return _metrics(items).parse_failure_rate
