"""lm-evaluation-harness hooks for the guard-bench tasks: data, prompt, scoring, all delegated to guard_eval.

* data: :meth:`guard_eval.benchmarks.Benchmark.load` of the registered benchmark named by ``dataset_kwargs.benchmark``,
  from ``--metadata '{"data_dir": "..."}'``, else ``$GUARD_DATA_DIR``, else ``../shared/data`` (never cwd-relative
  YAML paths); plugin benchmarks work the same way;
* prompt: :func:`guard_eval.prompting.build_prompt`. Its ``raw`` text is the ``chat`` variant's user turn, so
  ``--apply_chat_template`` gives the ``chat`` variant and no template gives GuardReasoner's raw prompt;
* scoring: :func:`guard_eval.verdict.parse_verdict` per sample and :func:`guard_eval.metrics.binary_metrics` per task,
  so lm-eval, Inspect and ``guard-eval run`` report the same F1 for the same outputs; ``contradiction_rate`` is
  :func:`guard_eval.consistency.contradicts` + :func:`guard_eval.metrics.consistency_metrics`, as everywhere.
"""

from __future__ import annotations

from typing import Any

from guard_eval.consistency import contradicts
from guard_eval.metrics import binary_metrics, consistency_metrics
from guard_eval.prompting import build_prompt
from guard_eval.verdict import parse_verdict

# A scored item: (gold label, predicted label or None, task type, whether the reasoning contradicts the Answers block
# or None). Each metric's aggregation reads the whole list.
Item = tuple[str, str | None, str, bool | None]


def load_benchmark(benchmark: str, data_dir: str | None = None, **_lm_eval_metadata: Any):
    """The benchmark as a ``DatasetDict`` with one ``test`` split (lm-eval's ``custom_dataset`` hook).

    lm-eval passes the task metadata and the model arguments as keyword arguments too; they are ignored.
    """
    import datasets

    from guard_eval import plugins

    bench = plugins.lookup(plugins.benchmarks(), benchmark, "benchmark (dataset_kwargs)")
    rows = [
        {"id": s.id, "benchmark": s.benchmark, "task": s.task.value, "prompt": s.prompt,
         "response": s.response, "label": s.label}
        for s in bench.load(data_dir)
    ]  # fmt: skip
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return build_prompt(doc["prompt"], doc["response"], "raw")  # type: ignore[return-value]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Item]:
    """Parse the trace once; every metric gets the same (gold, pred, task, contradicts) item."""
    verdict = parse_verdict(results[0])
    item = (doc["label"], verdict.label(doc["task"]), doc["task"], contradicts(verdict))
    return {"f1": item, "precision": item, "recall": item, "accuracy": item, "parse_failure_rate": item,
            "contradiction_rate": item}  # fmt: skip


def _metrics(items: list[Item]):
    tasks = {item[2] for item in items}
    if len(tasks) != 1:
        raise ValueError(f"a guard task scores one task type, got {sorted(tasks)}")
    return binary_metrics([item[0] for item in items], [item[1] for item in items], tasks.pop(), bootstrap=0)


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


def contradiction_rate(items: list[Item]) -> float:
    """% of traces whose explicit in-reasoning conclusion contradicts their Answers block (NaN: none to check)."""
    rate = consistency_metrics([item[3] if len(item) > 3 else None for item in items])["contradiction_rate"]
    return float("nan") if rate is None else rate
