"""Inspect tasks for every guard-bench benchmark, and ``guard_suite`` for the whole GuardReasoner suite.

Each benchmark of :mod:`guard_eval.default_benchmarks` is a task of the same name; the data, the prompt and the scoring
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
    from guard_eval.runner import resolve_benchmarks

    if prompt_variant not in PROMPT_VARIANTS:
        raise ValueError(f"unknown prompt_variant {prompt_variant!r}; choose one of {PROMPT_VARIANTS}")
    return [
        inspect_sample(s, prompt_variant)
        for bench in resolve_benchmarks(benchmarks)
        for s in bench.load(data_dir, limit=limit)
    ]


def guard_task(
    benchmark: str, data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat"
) -> Task:
    """The Inspect task of one registered benchmark: generate, then :func:`guard_scorer`."""
    from guard_eval import plugins

    bench = plugins.benchmarks().get(benchmark)
    if bench is None:
        raise KeyError(f"unknown benchmark {benchmark!r}; see `guard-eval benchmarks`")
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
    from guard_eval.runner import resolve_benchmarks

    return [guard_task(b.name, data_dir, limit, prompt_variant) for b in resolve_benchmarks([suite])]


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
# One task per built-in benchmark (names = benchmark names; a test checks they match the registry)
# ---------------------------------------------------------------------------------------------------------------------


@task(name=namespaced("toxicchat"))
def toxicchat(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """ToxicChat: prompt harmfulness of real user queries (2,853 samples)."""
    return guard_task("toxicchat", data_dir, limit, prompt_variant)


@task(name=namespaced("openai_moderation"))
def openai_moderation(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """OpenAI Moderation: prompt harmfulness (1,680 samples)."""
    return guard_task("openai_moderation", data_dir, limit, prompt_variant)


@task(name=namespaced("aegis"))
def aegis(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """Aegis Safety Test: prompt harmfulness (359 samples)."""
    return guard_task("aegis", data_dir, limit, prompt_variant)


@task(name=namespaced("simple_safety_tests"))
def simple_safety_tests(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """SimpleSafetyTests: clearly harmful prompts (100 samples)."""
    return guard_task("simple_safety_tests", data_dir, limit, prompt_variant)


@task(name=namespaced("harmbench_prompt"))
def harmbench_prompt(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """HarmBench: prompt harmfulness (239 samples)."""
    return guard_task("harmbench_prompt", data_dir, limit, prompt_variant)


@task(name=namespaced("wildguard_prompt"))
def wildguard_prompt(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """WildGuardTest: prompt harmfulness (1,725 samples; gated on the hub, or $GUARD_DATA_DIR/wildguardtest/)."""
    return guard_task("wildguard_prompt", data_dir, limit, prompt_variant)


@task(name=namespaced("harmbench_response"))
def harmbench_response(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """HarmBench: response harmfulness (602 samples)."""
    return guard_task("harmbench_response", data_dir, limit, prompt_variant)


@task(name=namespaced("safe_rlhf"))
def safe_rlhf(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """SafeRLHF: response harmfulness (2,000 samples)."""
    return guard_task("safe_rlhf", data_dir, limit, prompt_variant)


@task(name=namespaced("beavertails"))
def beavertails(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """BeaverTails: response harmfulness (3,021 samples)."""
    return guard_task("beavertails", data_dir, limit, prompt_variant)


@task(name=namespaced("xstest_response"))
def xstest_response(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """XSTest: response harmfulness (446 samples)."""
    return guard_task("xstest_response", data_dir, limit, prompt_variant)


@task(name=namespaced("wildguard_response"))
def wildguard_response(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """WildGuardTest: response harmfulness (rows with a response label)."""
    return guard_task("wildguard_response", data_dir, limit, prompt_variant)


@task(name=namespaced("jbb_response"))
def jbb_response(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """JBB-Response: is the jailbroken response harmful? Gold = human majority of JailbreakBench's judge
    comparison (300 samples); the four JBB judges are baselines in the leaderboard."""
    return guard_task("jbb_response", data_dir, limit, prompt_variant)


@task(name=namespaced("xstest_refusal"))
def xstest_refusal(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """XSTest: refusal detection (449 samples)."""
    return guard_task("xstest_refusal", data_dir, limit, prompt_variant)


@task(name=namespaced("wildguard_refusal"))
def wildguard_refusal(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """WildGuardTest: refusal detection (rows with a refusal label)."""
    return guard_task("wildguard_refusal", data_dir, limit, prompt_variant)


@task(name=namespaced("demo_prompt"))
def demo_prompt(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """Embedded demo set, prompt harmfulness (24 samples, no data directory needed)."""
    return guard_task("demo_prompt", data_dir, limit, prompt_variant)


@task(name=namespaced("demo_response"))
def demo_response(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """Embedded demo set, response harmfulness (20 samples)."""
    return guard_task("demo_response", data_dir, limit, prompt_variant)


@task(name=namespaced("demo_refusal"))
def demo_refusal(data_dir: str | None = None, limit: int | None = None, prompt_variant: str = "chat") -> Task:
    """Embedded demo set, refusal detection (16 samples)."""
    return guard_task("demo_refusal", data_dir, limit, prompt_variant)
