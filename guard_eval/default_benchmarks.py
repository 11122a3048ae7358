"""Built-in benchmarks: the GuardReasoner suite, WildGuardTest, JBB-Response and the embedded demo sets."""

from __future__ import annotations

from guard_eval.benchmarks import Benchmark, HubSource, read_guardreasoner, read_jbb, read_simple, read_wildguard
from guard_eval.hookspecs import hookimpl
from guard_eval.verdict import TaskType

P, R, F = TaskType.PROMPT, TaskType.RESPONSE, TaskType.REFUSAL
GR = "guardreasoner/benchmark/"
WILDGUARD_HUB = HubSource("allenai/wildguardmix", "wildguardtest", "test")
JBB_HUB = HubSource("JailbreakBench/JBB-Behaviors", "judge_comparison", "test")


def _published(f1_1b, f1_3b) -> dict[str, float]:
    return {"GuardReasoner-1B": f1_1b, "GuardReasoner-3B": f1_3b} if f1_1b is not None else {}


def _gr(name, task, title, file, count, f1_1b, f1_3b, test_dir=None) -> Benchmark:
    refs = {m: f"guardreasoner/test/{m}/{test_dir}/generated_predictions.jsonl" for m in ("1B", "3B")} if test_dir else {}
    return Benchmark(
        name, task, title, read_guardreasoner, local=GR + file, expected_count=count,
        published_f1=_published(f1_1b, f1_3b), reference_predictions=refs,
    )  # fmt: skip


def _wildguard(name, task, count, f1_1b, f1_3b) -> Benchmark:
    return Benchmark(
        name, task, f"WildGuardTest ({task.value})", read_wildguard, local="wildguardtest/wildguardtest.jsonl",
        hub=WILDGUARD_HUB, expected_count=count, published_f1=_published(f1_1b, f1_3b),
        description="allenai/wildguardmix config wildguardtest (gated on the hub); rows without this task's label are skipped",
    )  # fmt: skip


BUILTIN_BENCHMARKS: tuple[Benchmark, ...] = (
    # Prompt harmfulness
    _gr("toxicchat", P, "ToxicChat", "0_8_toxic_chat.json", 2853, 72.43, 78.20),
    _gr("openai_moderation", P, "OpenAI Moderation", "0_2_OpenAIModeration.json", 1680, 70.06, 71.87),
    _gr("aegis", P, "Aegis Safety Test", "0_1_AegisSafetyTest.json", 359, 89.34, 91.39, "AegisSafetyTest"),
    _gr("simple_safety_tests", P, "SimpleSafetyTests", "0_0_SimpleSafetyTests.json", 100, 98.99, 100.00, "SimpleSafetyTests"),
    _gr("harmbench_prompt", P, "HarmBench (prompt)", "0_3_harmbench_prompt.json", 239, 96.31, 89.10, "HarmBenchPrompt"),
    _wildguard("wildguard_prompt", P, 1725, 87.37, 89.01),
    # Response harmfulness
    _gr("harmbench_response", R, "HarmBench (response)", "0_5_harmbench_response.json", 602, 84.75, 85.66, "HarmBenchResponse"),
    _gr("safe_rlhf", R, "SafeRLHF", "0_9_safe_rlhf.json", 2000, 68.39, 69.02),
    _gr("beavertails", R, "BeaverTails", "0_A_beaver_tails.json", 3021, 85.84, 86.72),
    _gr("xstest_response", R, "XSTest (response harm)", "0_6_xstest_response_harmful.json", 446, 90.12, 91.36, "XSTestReponseHarmful"),
    _wildguard("wildguard_response", R, None, 74.81, 79.70),
    Benchmark(
        "jbb_response", R, "JBB-Response", read_jbb, local="jbb/judge-comparison.csv", hub=JBB_HUB, expected_count=300,
        description="JailbreakBench judge comparison: is target_response harmful? gold = human_majority",
    ),
    # Refusal detection
    _gr("xstest_refusal", F, "XSTest (refusal)", "0_7_xstest_response_refusal.json", 449, None, None, "XSTestResponseRefusal"),
    _wildguard("wildguard_refusal", F, None, None, None),
    # Embedded demo sets: shipped with the package, written for this project, runnable with no data directory.
    Benchmark("demo_prompt", P, "Demo (prompt)", read_simple, local="demo_prompt.jsonl", embedded=True),
    Benchmark("demo_response", R, "Demo (response)", read_simple, local="demo_response.jsonl", embedded=True),
    Benchmark("demo_refusal", F, "Demo (refusal)", read_simple, local="demo_refusal.jsonl", embedded=True),
)

# Named groups accepted wherever a list of benchmarks is.
SUITES: dict[str, tuple[str, ...]] = {
    "guardreasoner": tuple(b.name for b in BUILTIN_BENCHMARKS if not b.embedded and b.name != "jbb_response"),
    "demo": ("demo_prompt", "demo_response", "demo_refusal"),
    "prompt": tuple(b.name for b in BUILTIN_BENCHMARKS if b.task is P and not b.embedded),
    "response": tuple(b.name for b in BUILTIN_BENCHMARKS if b.task is R and not b.embedded),
    "refusal": tuple(b.name for b in BUILTIN_BENCHMARKS if b.task is F and not b.embedded),
}


@hookimpl
def guard_register_benchmarks():
    return list(BUILTIN_BENCHMARKS)
