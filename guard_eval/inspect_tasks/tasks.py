"""Inspect tasks for every guard-bench benchmark, and ``guard_suite`` for the whole GuardReasoner suite.

Each registered benchmark (built-in or from a plugin) is a task of the same name, made from the registry; the data, the prompt and the scoring
are guard-eval's own (:meth:`Benchmark.load`, :func:`guard_eval.prompting.build_prompt`, :func:`guard_scorer`)::

    inspect eval guard_eval/wildguard_prompt --model hf/local -M model_path=CKPT -M do_sample=false
    inspect eval guard_eval/toxicchat -T limit=100 -T prompt_variant=system --model vllm/CKPT
    inspect eval guard_eval/guard_suite --model hf/local -M model_path=CKPT      # the 13 GuardReasoner benchmarks
    inspect eval guard_eval/guard_benchmark -T benchmark=my_plugin_bench ...     # a benchmark added by a plugin

Task parameters (``-T``): ``data_dir`` (default ``$GUARD_DATA_DIR``), ``limit`` (first N samples of each benchmark)
and ``prompt_variant`` (``chat``: one user turn, ``system``: instruction as system turn, ``raw``: GuardReasoner's
plain text; Inspect's model providers still wrap a plain string in a user turn, so ``raw`` equals ``chat`` for chat
models).
"""

from __future__ import annotations

from collections.abc import Callable

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessage, GenerateConfig
from inspect_ai.solver import generate

from guard_eval import benchmarks as gb
from guard_eval.inspect_tasks.scorer import SUITE_METRICS, guard_scorer, namespaced
from guard_eval.prompting import PROMPT_VARIANTS, build_prompt

# Long enough for GuardReasoner's step-by-step reasoning; `--max-tokens` overrides it.
MAX_TOKENS = 1024


def inspect_sample(sample: gb.Sample, prompt_variant: str = "chat") -> Sample:
    """An Inspect sample carrying guard-eval's prompt, the gold label as target, and the metadata scorers read."""
    from guard_eval.generation.inspect_backend import chat_messages

    messages: str | list[ChatMessage] = chat_messages(build_prompt(sample.prompt, sample.response, prompt_variant))  # type: ignore[arg-type]
    metadata = {
        **sample.metadata,
        "benchmark": sample.benchmark,
        "task": sample.task.value,
        "id": sample.id,
        "prompt": sample.prompt,
        "response": sample.response,
    }
    return Sample(input=messages, target=sample.label, id=sample.id, metadata=metadata)


def load_samples(
    benchmarks: list[str], data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> list[Sample]:
    """Inspect samples of benchmarks or suites (``guardreasoner``, ``demo``, ...), ``limit`` per benchmark."""
    from guard_eval.selection import resolve_benchmarks

    if prompt_variant not in PROMPT_VARIANTS:
        raise ValueError(f"unknown prompt_variant {prompt_variant!r}; choose one of {PROMPT_VARIANTS}")
    return [
        inspect_sample(s, prompt_variant)
        for bench in resolve_benchmarks(benchmarks, data_dir, check_data=True)  # a suite skips absent data
        for s in bench.load(data_dir, limit=limit)
    ]


def guard_task(
    benchmark: str, data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> Task:
    """The Inspect task of one registered benchmark: generate, then :func:`guard_scorer`."""
    from guard_eval import plugins

    bench = plugins.lookup(plugins.benchmarks(), benchmark, "benchmark")
    return Task(
        dataset=MemoryDataset(load_samples([benchmark], data_dir, limit, prompt_variant), name=benchmark),
        solver=generate(),
        scorer=guard_scorer(),
        config=GenerateConfig(max_tokens=MAX_TOKENS),
        metadata={"benchmark": benchmark, "task": bench.task.value, "title": bench.title, "prompt_variant": prompt_variant},
    )


def suite_tasks(
    suite: str = "guardreasoner", data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> list[Task]:
    """One task per benchmark of a suite, for ``inspect_ai.eval_set(suite_tasks(), log_dir=...)`` (one log each)."""
    from guard_eval.selection import resolve_benchmarks

    return [guard_task(b.name, data_dir, limit, prompt_variant) for b in resolve_benchmarks([suite], data_dir, check_data=True)]


@task(name=namespaced("guard_suite"))
def guard_suite(
    suite: str = "guardreasoner", data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> Task:
    """A suite (default: the GuardReasoner suite of 13 benchmarks) as one task: one ``inspect eval`` call, one log.

    Metrics: F1 per benchmark and the sample-weighted F1 per task type (``prompt_avg``, ``response_avg``,
    ``refusal_avg``); ``guard-eval report LOGDIR`` prints the paper's tables from the log.
    """
    return Task(
        dataset=MemoryDataset(load_samples([suite], data_dir, limit, prompt_variant), name=suite),
        solver=generate(),
        scorer=guard_scorer(),
        metrics=SUITE_METRICS,
        config=GenerateConfig(max_tokens=MAX_TOKENS),
        metadata={"suite": suite, "prompt_variant": prompt_variant},
    )


@task(name=namespaced("guard_benchmark"))
def guard_benchmark(
    benchmark: str, data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> Task:
    """Any registered benchmark by name, including those added by plugins (``-T benchmark=NAME``)."""
    return guard_task(benchmark, data_dir, limit, prompt_variant)


# ---------------------------------------------------------------------------------------------------------------------
# One task per registered benchmark (plugins' included), made from the registry: task name = benchmark name
# ---------------------------------------------------------------------------------------------------------------------

_BENCHMARK_TASKS: dict[str, Callable[..., Task]] = {}


def benchmark_task(name: str) -> Callable[..., Task]:
    """The Inspect task ``guard_eval/<name>`` of a registered benchmark (registered with Inspect on first use)."""
    if name not in _BENCHMARK_TASKS:
        from guard_eval import plugins

        bench = plugins.benchmarks()[name]

        def make(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
            return guard_task(name, data_dir, limit, prompt_variant)

        count = f", {bench.expected_count:,} samples" if bench.expected_count else ""
        make.__name__ = make.__qualname__ = name
        make.__doc__ = f"{bench.title}: {bench.task.value} task{count}. {bench.description}".strip()
        _BENCHMARK_TASKS[name] = task(name=namespaced(name))(make)
    return _BENCHMARK_TASKS[name]


def benchmark_tasks() -> dict[str, Callable[..., Task]]:
    """A task for every registered benchmark; the ``inspect_ai`` entry point calls it so that each name resolves."""
    from guard_eval import plugins

    return {name: benchmark_task(name) for name in plugins.benchmarks()}


def __getattr__(name: str) -> Callable[..., Task]:
    """``from guard_eval.inspect_tasks.tasks import toxicchat``: the task of a registered benchmark."""
    if not name.startswith("_"):
        from guard_eval import plugins

        if name in plugins.benchmarks():
            return benchmark_task(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
