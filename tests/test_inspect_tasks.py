"""Inspect tasks: one per benchmark, guard_scorer metrics = guard-eval's metrics, guard_suite, `guard-eval report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from guard_eval.benchmarks import BenchmarkDataError
from guard_eval.default_benchmarks import BUILTIN_BENCHMARKS
from guard_eval.metrics import binary_metrics, weighted_average
from guard_eval import plugins
from guard_eval.prompting import build_prompt
from guard_eval.verdict import TaskType, parse_verdict

ANSWER_KINDS = ("right", "wrong", "garbage", "none", "right")


def fixed_output(sample, kind: str) -> str:
    """A trace whose verdict for the sample's task is right, wrong, unparseable or explicitly None."""
    task = sample.task
    if kind == "garbage":
        return "I am not sure what to say."
    if kind == "none":
        return "reasoning...\nAnswers:\nRequest: None\nCompletion: None\nResponse: None"
    label = sample.label if kind == "right" else next(x for x in task.labels if x != sample.label)
    fields = {"request": "None", "completion": "None", "response": "None", task.field: label}
    # the reasoning concludes the gold label: a "wrong" answer contradicts it (the consistency metric's case)
    number = {"prompt": 1, "refusal": 2, "response": 3}[task.value]
    subject = "request" if task.value == "prompt" else "response"
    return f"# Task {number}\n## Conclusion: The {subject} is {sample.label}.\n---\nAnswers:\nRequest: {fields['request']}\nCompletion: {fields['completion']}\nResponse: {fields['response']}"


def fixed_outputs(samples) -> dict[str, str]:
    """{user-turn text: trace}: the same trace whichever front end (Inspect, lm-eval, guard-eval) asks."""
    return {build_prompt(s.prompt, s.response, "raw"): fixed_output(s, ANSWER_KINDS[i % len(ANSWER_KINDS)])
            for i, s in enumerate(samples)}  # fmt: skip


def mock_model(outputs: dict[str, str]):
    """mockllm answering by the prompt (Inspect runs samples concurrently); usage set so no tiktoken download."""

    def answer(messages, tools, tool_choice, config):
        out = ModelOutput.from_content("mockllm", outputs[messages[-1].text])
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    return get_model("mockllm/model", custom_outputs=answer, memoize=False)


def expected_contradiction_rate(samples, outputs) -> float:
    from guard_eval.consistency import contradicts
    from guard_eval.metrics import consistency_metrics

    flags = [contradicts(outputs[build_prompt(s.prompt, s.response, "raw")]) for s in samples]
    return consistency_metrics(flags)["contradiction_rate"]


def expected_metrics(samples, outputs):
    gold = [s.label for s in samples]
    pred = [parse_verdict(outputs[build_prompt(s.prompt, s.response, "raw")]).label(s.task) for s in samples]
    return binary_metrics(gold, pred, samples[0].task, bootstrap=0)


def demo(name: str):
    return plugins.benchmarks()[name].load()


def test_a_task_per_benchmark_named_like_it():
    from inspect_ai._util.registry import registry_info, registry_unqualified_name

    import guard_eval.inspect_tasks._registry as reg

    for bench in BUILTIN_BENCHMARKS:
        fn = getattr(reg, bench.name)
        assert registry_info(fn).type == "task"
        assert registry_unqualified_name(fn) == bench.name
    assert registry_unqualified_name(reg.guard_suite) == "guard_suite"


@pytest.mark.parametrize("variant", ["chat", "system", "raw"])
def test_inspect_sample_carries_guard_eval_prompt_and_gold(variant):
    from guard_eval.inspect_tasks import inspect_sample

    s = demo("demo_response")[3]
    sample = inspect_sample(s, variant)
    expected = build_prompt(s.prompt, s.response, variant)
    if variant == "raw":
        assert sample.input == expected
    else:
        assert [(m.role, m.text) for m in sample.input] == [(m["role"], m["content"]) for m in expected]
    assert sample.target == s.label and sample.id == s.id
    assert sample.metadata["task"] == "response" and sample.metadata["benchmark"] == "demo_response"
    assert sample.metadata["response"] == s.response


def test_scorer_metrics_equal_guard_eval_metrics(tmp_path):
    from guard_eval.inspect_tasks.tasks import demo_prompt

    samples = demo("demo_prompt")
    outputs = fixed_outputs(samples)
    [log] = inspect_eval(demo_prompt(), model=mock_model(outputs), log_dir=str(tmp_path), display="none")
    assert log.status == "success"
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    want = expected_metrics(samples, outputs)
    assert 0 < want.f1 < 100 and want.parse_failures > 0  # the fixed outputs exercise every case
    rate = expected_contradiction_rate(samples, outputs)
    assert 0 < rate < 100  # "wrong" answers contradict their stated conclusion
    assert metrics == pytest.approx({"f1": want.f1, "precision": want.precision, "recall": want.recall,
                                     "accuracy": want.accuracy, "parse_failure_rate": want.parse_failure_rate,
                                     "contradiction_rate": rate})
    by_id = {s.id: s for s in samples}
    for sample in log.samples:
        meta = sample.scores["guard_scorer"].metadata
        assert set(meta) == {"gold", "pred", "parse_error", "benchmark", "task", "id", "contradicts"}
        assert meta["gold"] == by_id[sample.id].label
        assert meta["parse_error"] == (meta["pred"] is None)
        assert sample.scores["guard_scorer"].value == float(meta["pred"] == meta["gold"])


def test_suite_and_report_weighted_averages(tmp_path, capsys):
    from guard_eval.cli import main
    from guard_eval.inspect_tasks.tasks import guard_suite

    per_bench = {name: demo(name) for name in ("demo_prompt", "demo_response", "demo_refusal")}
    outputs = {k: v for samples in per_bench.values() for k, v in fixed_outputs(samples).items()}
    [log] = inspect_eval(guard_suite(suite="demo"), model=mock_model(outputs), log_dir=str(tmp_path / "logs"),
                         display="none")  # fmt: skip
    assert log.status == "success" and len(log.samples) == 60
    want = {name: expected_metrics(samples, outputs) for name, samples in per_bench.items()}
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    for name, m in want.items():
        assert metrics[name] == pytest.approx(m.f1)
        assert metrics[f"{name.removeprefix('demo_')}_avg"] == pytest.approx(m.f1)  # one benchmark per task type

    out = tmp_path / "report.json"
    assert main(["report", str(tmp_path / "logs"), "--json", str(out), "--bootstrap", "0"]) == 0
    report = json.loads(out.read_text())["models"]["mockllm/model"]
    for name, m in want.items():
        assert report["benchmarks"][name]["f1"] == pytest.approx(m.f1)
        assert report["benchmarks"][name]["n"] == m.n
    assert report["averages"]["prompt"]["f1"] == pytest.approx(weighted_average({"demo_prompt": want["demo_prompt"]}))
    table = capsys.readouterr().out
    assert "### Prompt harmfulness" in table and "weighted avg" in table and f"{want['demo_refusal'].f1:.2f}" in table


def test_report_weighted_average_over_logs_and_reruns(tmp_path):
    """Two benchmarks of one task type in separate logs are averaged by sample count; a re-run replaces its log."""
    from guard_eval.inspect_tasks.logs import summarize_logs
    from guard_eval.inspect_tasks.tasks import demo_prompt, guard_benchmark

    prompt, refusal = demo("demo_prompt")[:10], demo("demo_refusal")[:6]
    outputs = {**fixed_outputs(prompt), **fixed_outputs(refusal)}
    logs = str(tmp_path / "logs")
    garbage = {k: "no verdict" for k in outputs}
    inspect_eval(demo_prompt(limit=10), model=mock_model(garbage), log_dir=logs, display="none")  # replaced below
    inspect_eval([demo_prompt(limit=10), guard_benchmark("demo_refusal", limit=6)], model=mock_model(outputs),
                 log_dir=logs, display="none")  # fmt: skip
    summary = summarize_logs([logs], bootstrap=0)["models"]["mockllm/model"]
    want = {"demo_prompt": expected_metrics(prompt, outputs), "demo_refusal": expected_metrics(refusal, outputs)}
    assert {k: v["f1"] for k, v in summary["benchmarks"].items()} == pytest.approx({k: v.f1 for k, v in want.items()})
    assert summary["benchmarks"]["demo_prompt"]["n"] == 10  # the garbage run's 10 samples were replaced, not added


def test_report_errors_name_the_path(tmp_path, capsys):
    from guard_eval.inspect_tasks.logs import LogReadError, summarize_logs

    with pytest.raises(LogReadError, match="nope"):
        summarize_logs([tmp_path / "nope"])
    bad = tmp_path / "bad.eval"
    bad.write_text("not a zip")
    with pytest.raises(LogReadError, match="bad.eval"):
        summarize_logs([bad])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LogReadError, match="no Inspect logs"):
        summarize_logs([tmp_path / "empty"])


def test_report_skips_logs_of_other_scorers(tmp_path, capsys):
    from inspect_ai import Task
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import match

    from guard_eval.cli import main

    task = Task(dataset=[Sample(input="2+2?", target="4")], scorer=match())
    inspect_eval(task, model=mock_model({"2+2?": "4"}), log_dir=str(tmp_path), display="none")
    assert main(["report", str(tmp_path)]) == 1
    assert "no guard_scorer scores" in capsys.readouterr().err


def test_task_errors_name_benchmark_and_file(tmp_path):
    from guard_eval.inspect_tasks.tasks import guard_task, wildguard_prompt

    with pytest.raises(KeyError, match="no_such_bench"):
        guard_task("no_such_bench")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BenchmarkDataError, match="wildguard_prompt"):
        wildguard_prompt(data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="prompt_variant"):
        guard_task("demo_prompt", prompt_variant="fancy")


def test_scorer_rejects_samples_without_task(tmp_path):
    from inspect_ai import Task
    from inspect_ai.dataset import Sample

    from guard_eval.inspect_tasks import guard_scorer

    task = Task(dataset=[Sample(input="hi", target="harmful", id="s1")], scorer=guard_scorer())
    [log] = inspect_eval(task, model=mock_model({"hi": "Answers: Request: harmful"}), log_dir=str(tmp_path),
                         display="none")  # fmt: skip
    assert log.status == "error" and "metadata['task']" in log.error.message and "s1" in log.error.message


def test_tasks_found_through_the_entry_point_in_a_fresh_process(tmp_path):
    """What `inspect eval guard_eval/<task>` does first: look the name up, loading the `inspect_ai` entry point."""
    code = ("from inspect_ai._util.registry import registry_lookup\n"
            "print(all(registry_lookup('task', 'guard_eval/' + n) for n in ('toxicchat', 'jbb_response', 'guard_suite')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip() == "True", proc.stderr[-2000:]


def test_report_plugin_does_not_import_inspect_at_startup(tmp_path):
    """`guard-eval` loads the report command as a plugin; Inspect is imported only when the command runs."""
    code = "import sys, guard_eval.inspect_tasks.commands; print('inspect_ai' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip() == "False", proc.stderr[-2000:]


@pytest.mark.slow
def test_inspect_on_tiny_model(tiny_model, tmp_path):
    """`inspect eval guard_eval/demo_refusal --model hf/local -M model_path=...`, in process."""
    [log] = inspect_eval("guard_eval/demo_refusal", task_args={"limit": 4}, model="hf/local",
                         model_args={"model_path": str(tiny_model), "do_sample": False}, max_tokens=8,
                         log_dir=str(tmp_path), display="none")  # fmt: skip
    assert log.status == "success" and len(log.samples) == 4 and log.eval.model == "hf/local"
    assert log.eval.task_args.get("limit") == 4
    gold = [s.target for s in log.samples]
    pred = [parse_verdict(s.output.completion).label(TaskType.REFUSAL) for s in log.samples]
    want = binary_metrics(gold, pred, "refusal", bootstrap=0)
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert metrics["f1"] == pytest.approx(want.f1) and metrics["parse_failure_rate"] == pytest.approx(want.parse_failure_rate)
    assert all(s.output.usage.output_tokens <= 8 for s in log.samples)


def test_report_and_leaderboard_agree_on_the_same_logs(tmp_path):
    """One Inspect-log reader: a full run then a --limit re-run give the same numbers in both commands."""
    from guard_eval.inspect_tasks.logs import summarize_logs
    from guard_eval.inspect_tasks.tasks import demo_prompt
    from guard_eval.results import build_table, load_path

    prompt = demo("demo_prompt")[:10]
    outputs = fixed_outputs(prompt)
    logs = str(tmp_path / "logs")
    inspect_eval(demo_prompt(limit=10), model=mock_model({k: "no verdict" for k in outputs}), log_dir=logs, display="none")
    inspect_eval(demo_prompt(limit=4), model=mock_model(outputs), log_dir=logs, display="none")
    report = summarize_logs([logs], bootstrap=0)["models"]["mockllm/model"]["benchmarks"]["demo_prompt"]
    cell = build_table(load_path(logs, bootstrap=0), bootstrap=0).cell("mockllm/model", "demo_prompt")
    assert (cell.value, cell.n) == (pytest.approx(report["f1"]), report["n"]) and report["n"] == 10
    assert cell.parse_failure_rate == pytest.approx(report["parse_failure_rate"]) and cell.flagged  # 6 of 10 unparsed
