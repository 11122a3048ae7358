"""lm-eval tasks/: YAMLs match the registry, scoring = guard-eval's, group averages weighted by size, real runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("lm_eval")

from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager
from test_inspect_tasks import demo, expected_contradiction_rate, expected_metrics, fixed_outputs, mock_model

from guard_eval.benchmarks import BenchmarkDataError
from guard_eval.default_benchmarks import BUILTIN_BENCHMARKS, SUITES
from guard_eval.metrics import binary_metrics, weighted_average
from guard_eval.prompting import build_prompt
from guard_eval.verdict import parse_verdict

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "tasks"
METRICS = ("f1", "precision", "recall", "accuracy", "parse_failure_rate")


def tasks_utils():
    spec = importlib.util.spec_from_file_location("guard_lmeval_utils", TASKS / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FixedLM(LM):
    """An lm-eval model answering each context with a fixed trace (no chat template: the context is the raw prompt)."""

    def __init__(self, outputs: dict[str, str]):
        super().__init__()
        self.outputs = outputs

    def generate_until(self, requests, disable_tqdm: bool = False):
        return [self.outputs[r.args[0]] for r in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError


def run_lm_eval(tasks: list[str], model, **kwargs):
    manager = TaskManager(include_path=str(TASKS), include_defaults=False, metadata=kwargs.pop("metadata", None))
    return simple_evaluate(model=model, tasks=tasks, task_manager=manager, bootstrap_iters=0, **kwargs)


def _yaml(path: Path) -> dict:
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda loader_, node: f"!function {node.value}")
    return yaml.load(path.read_text(), Loader=loader)


def test_committed_yamls_are_what_the_registry_generates():
    from guard_eval.lm_eval_tasks import stale_files
    from guard_eval.lm_eval_tasks.__main__ import main as generate

    assert stale_files() == [], "run `python -m guard_eval.lm_eval_tasks` and commit the result"
    assert generate(["--check"]) == 0
    assert TASKS.resolve() == (REPO / "guard_eval" / "lm_eval_tasks")  # tasks/ is the packaged folder
    group = _yaml(TASKS / "_guard_suite_prompt.yaml")
    assert all(m["weight_by_size"] for m in group["aggregate_metric_list"])
    manager = TaskManager(include_path=str(TASKS), include_defaults=False)
    assert {f"guard_{b.name}" for b in BUILTIN_BENCHMARKS} | {"guard_suite", "guard_demo"} <= set(manager.all_tasks)


PLUGIN_BENCHMARK = """
from guard_eval.benchmarks import Benchmark, read_simple
from guard_eval.hookspecs import hookimpl
from guard_eval.verdict import TaskType

@hookimpl
def guard_register_benchmarks():
    return [Benchmark("plugin_bench", TaskType.RESPONSE, "A plugin's", read_simple, local="demo_response.jsonl",
                      embedded=True)]
"""


def test_a_benchmark_registered_by_a_plugin_is_an_inspect_and_an_lm_eval_task(tmp_path, monkeypatch, capsys):
    """Adding a benchmark is one registration: both harnesses find it without any file edited by hand."""
    import os
    import subprocess
    import sys

    from test_plugins import install_fake_distribution

    from guard_eval.cli import main as guard_eval

    site = tmp_path / "site"
    site.mkdir()
    install_fake_distribution(site, "guard_plugin_bench", PLUGIN_BENCHMARK)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    code = ("from inspect_ai._util.registry import registry_lookup\n"
            "t = registry_lookup('task', 'guard_eval/plugin_bench')(limit=3)\n"
            "print(len(t.dataset), t.metadata['task'])")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.stdout.strip() == "3 response", proc.stderr[-2000:]

    assert guard_eval(["lm-eval-path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_relative_to(tmp_path / "cache") and (path / "guard_toxicchat.yaml").is_file()
    samples = demo("demo_response")
    outputs = fixed_outputs(samples)
    manager = TaskManager(include_path=str(path), include_defaults=False)
    results = simple_evaluate(model=FixedLM(outputs), tasks=["guard_plugin_bench"], task_manager=manager, bootstrap_iters=0)
    assert results["results"]["guard_plugin_bench"]["f1,none"] == pytest.approx(expected_metrics(samples, outputs).f1)


def test_process_results_and_aggregations_are_guard_eval_metrics():
    utils = tasks_utils()
    samples = demo("demo_response")
    outputs = fixed_outputs(samples)
    docs = utils.load_benchmark("demo_response", pretrained="ignored-model-arg")["test"]
    assert [d["id"] for d in docs] == [s.id for s in samples]
    items = [utils.process_results(doc, [outputs[utils.doc_to_text(doc)]]) for doc in docs]
    want = expected_metrics(samples, outputs)
    for metric in METRICS:
        assert getattr(utils, metric)([i[metric] for i in items]) == pytest.approx(getattr(want, metric))
    rate = expected_contradiction_rate(samples, outputs)
    assert 0 < rate < 100 and utils.contradiction_rate([i["contradiction_rate"] for i in items]) == pytest.approx(rate)
    with pytest.raises(ValueError, match="one task type"):
        utils.f1([("harmful", None, "prompt"), ("refusal", None, "refusal")])


def test_chat_template_prompt_is_guard_evals_chat_variant():
    """lm-eval's user turn (doc_to_text) is exactly guard-eval's `chat` variant, so --apply_chat_template matches."""
    utils = tasks_utils()
    for doc in utils.load_benchmark("demo_refusal")["test"]:
        [message] = build_prompt(doc["prompt"], doc["response"], "chat")
        assert utils.doc_to_text(doc) == message["content"]


def test_inspect_lm_eval_and_guard_eval_agree_on_fixed_outputs(tmp_path):
    """The same traces through the three front ends give the F1 of guard_eval.metrics.binary_metrics."""
    from inspect_ai import eval as inspect_eval

    from guard_eval.inspect_tasks.tasks import guard_suite
    from guard_eval.selection import resolve_benchmarks
    from guard_eval.runner import EvalRun

    names = SUITES["demo"]
    samples = {n: demo(n) for n in names}
    outputs = {k: v for s in samples.values() for k, v in fixed_outputs(s).items()}
    want = {n: expected_metrics(samples[n], outputs) for n in names}

    lm = run_lm_eval(["guard_demo"], FixedLM(outputs))["results"]
    [log] = inspect_eval(guard_suite(suite="demo"), model=mock_model(outputs), log_dir=str(tmp_path / "inspect"),
                         display="none")  # fmt: skip
    inspect_f1 = {k: v.value for k, v in log.results.scores[0].metrics.items()}

    class FixedBackend:
        name = "fixed"

        def generate(self, prompts, config):
            return [[outputs[p[0]["content"]]] for p in prompts]

    ours = EvalRun(FixedBackend(), resolve_benchmarks(["demo"]), tmp_path / "run", {"path": "fixed"},
                   progress=False, bootstrap=0).run()["benchmarks"]  # fmt: skip
    for name in names:
        assert lm[f"guard_{name}"]["f1,none"] == pytest.approx(want[name].f1)
        assert inspect_f1[name] == pytest.approx(want[name].f1)
        assert ours[name]["f1"] == pytest.approx(want[name].f1)
        # the consistency metric: one code path behind all three front ends
        rate = expected_contradiction_rate(samples[name], outputs)
        assert lm[f"guard_{name}"]["contradiction_rate,none"] == pytest.approx(rate)
        assert ours[name]["contradiction_rate"] == pytest.approx(rate)
        for metric in METRICS[1:]:
            assert lm[f"guard_{name}"][f"{metric},none"] == pytest.approx(getattr(want[name], metric))
    assert len({round(m.f1, 6) for m in want.values()}) > 1  # the benchmarks differ, so a mix-up would show


def _write_synthetic_refusal_data(root: Path) -> None:
    """Tiny stand-ins for the two refusal files (XSTest in GuardReasoner format, WildGuardTest rows)."""
    gr = root / "guardreasoner" / "benchmark"
    gr.mkdir(parents=True)
    rows = [{"instruction": "", "input": f"Human user:\nq{i}\n\nAI assistant:\nr{i}\n\n",
             "output": "refusal" if i % 2 else "compliance"} for i in range(5)]  # fmt: skip
    (gr / "0_7_xstest_response_refusal.json").write_text(json.dumps(rows))
    wg = root / "wildguardtest"
    wg.mkdir()
    labels = ["refusal", "compliance", None, "refusal", "refusal", "compliance", "refusal", "compliance"]
    lines = [json.dumps({"prompt": f"w{i}", "response": f"a{i}", "prompt_harm_label": "harmful",
                         "response_harm_label": None, "response_refusal_label": lab}) for i, lab in enumerate(labels)]
    (wg / "wildguardtest.jsonl").write_text("\n".join(lines) + "\n")


def test_suite_group_is_the_sample_weighted_average_from_the_data_dir(tmp_path):
    """guard_suite_refusal averages its tasks by size; the data dir comes from --metadata, not from the cwd."""
    from guard_eval import plugins

    _write_synthetic_refusal_data(tmp_path)
    known = plugins.benchmarks()
    samples = {n: known[n].load(tmp_path) for n in ("xstest_refusal", "wildguard_refusal")}
    assert [len(s) for s in samples.values()] == [5, 7]  # the unlabeled WildGuard row is skipped
    outputs = {k: v for s in samples.values() for k, v in fixed_outputs(s).items()}
    want = {n: expected_metrics(s, outputs) for n, s in samples.items()}

    out = run_lm_eval(["guard_suite_refusal"], FixedLM(outputs), metadata={"data_dir": str(tmp_path)})
    group = out["results"]["guard_suite_refusal"]
    assert group["f1,none"] == pytest.approx(weighted_average(want))
    assert group["accuracy,none"] == pytest.approx(weighted_average(want, "accuracy"))
    assert out["results"]["guard_xstest_refusal"]["f1,none"] == pytest.approx(want["xstest_refusal"].f1)
    assert weighted_average(want) not in (want["xstest_refusal"].f1, want["wildguard_refusal"].f1)


def test_available_suite_skips_benchmarks_without_data_and_runs(tmp_path, monkeypatch, capsys):
    """`guard-eval lm-eval-path --available`: guard_suite over the benchmarks whose data is there (WildGuardTest
    absent: one warning naming its file), and lm-eval runs it."""
    from guard_eval.cli import main

    _write_synthetic_refusal_data(tmp_path / "data")
    (tmp_path / "data" / "wildguardtest" / "wildguardtest.jsonl").unlink()
    for var, value in {"GUARD_DATA_DIR": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                       "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    assert main(["lm-eval-path", "--available"]) == 0
    out, err = capsys.readouterr()
    folder = Path(out.strip())
    assert [line for line in err.splitlines() if "wildguard" in line] == [
        f"warning: skipping wildguard_prompt, wildguard_response, wildguard_refusal: no data: expected "
        f"{tmp_path / 'data' / 'wildguardtest' / 'wildguardtest.jsonl'}; hub allenai/wildguardmix unavailable offline"]
    assert _yaml(folder / "_guard_suite.yaml")["task"] == ["guard_suite_refusal"]  # only XSTest-refusal has data
    assert _yaml(folder / "_guard_suite_refusal.yaml")["task"] == ["guard_xstest_refusal"]

    samples = next(b for b in BUILTIN_BENCHMARKS if b.name == "xstest_refusal").load(tmp_path / "data")
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    result = simple_evaluate(model=FixedLM(fixed_outputs(samples)), tasks=["guard_suite"], task_manager=manager,
                             bootstrap_iters=0)  # fmt: skip
    assert result["results"]["guard_xstest_refusal"]["f1,none"] == pytest.approx(
        expected_metrics(samples, fixed_outputs(samples)).f1)


def test_dataset_errors_name_the_benchmark(tmp_path):
    utils = tasks_utils()
    with pytest.raises(KeyError, match="no_such_bench"):
        utils.load_benchmark("no_such_bench")
    with pytest.raises(BenchmarkDataError, match="xstest_refusal.*not found"):
        utils.load_benchmark("xstest_refusal", data_dir=str(tmp_path))


@pytest.mark.slow
def test_lm_eval_hf_on_tiny_model_with_chat_template(tiny_model, tmp_path, monkeypatch):
    """`lm_eval --model hf --apply_chat_template` on the tiny model, run from another cwd: the prompt is guard-eval's
    chat prompt rendered by the model's template, and the F1 is binary_metrics of the parsed generations."""
    from transformers import AutoTokenizer

    monkeypatch.chdir(tmp_path)
    out = run_lm_eval(["guard_demo_prompt"], "hf", model_args=f"pretrained={tiny_model},dtype=float32", limit=4,
                      apply_chat_template=True, gen_kwargs="max_gen_toks=8", log_samples=True, device="cpu")  # fmt: skip
    records = out["samples"]["guard_demo_prompt"]
    assert len(records) == 4
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for rec in records:
        doc = rec["doc"]
        expected = tokenizer.apply_chat_template(build_prompt(doc["prompt"], doc["response"], "chat"),
                                                 tokenize=False, add_generation_prompt=True)  # fmt: skip
        assert rec["arguments"][0][0] == expected
        assert rec["arguments"][0][1]["max_gen_toks"] == 8 and rec["arguments"][0][1]["until"] == []
    gold = [r["target"] for r in records]
    pred = [parse_verdict(r["filtered_resps"][0]).label("prompt") for r in records]
    want = binary_metrics(gold, pred, "prompt", bootstrap=0)
    result = out["results"]["guard_demo_prompt"]
    assert result["f1,none"] == pytest.approx(want.f1)
    assert result["parse_failure_rate,none"] == pytest.approx(want.parse_failure_rate)


@pytest.mark.shared_data
def test_jbb_response_scores_a_jbb_judge_identically_in_both_harnesses(data_dir, tmp_path):
    """JBB-Response on the real judge-comparison set: the Llama-3 judge's published verdicts, written as guard traces,
    get the same harmful-F1 (vs the human majority) from Inspect, lm-eval and binary_metrics."""
    from inspect_ai import eval as inspect_eval

    from guard_eval.inspect_tasks.tasks import jbb_response
    from guard_eval import plugins

    samples = plugins.benchmarks()["jbb_response"].load(data_dir)
    assert len(samples) == 300
    verdict = {"1": "harmful", "0": "unharmful"}
    outputs = {build_prompt(s.prompt, s.response, "raw"):
               f"Answers:\nRequest: harmful\nCompletion: compliance\nResponse: {verdict[s.metadata['llama3_cf']]}"
               for s in samples}  # fmt: skip
    want = binary_metrics([s.label for s in samples], [verdict[s.metadata["llama3_cf"]] for s in samples], "response",
                          bootstrap=0)  # fmt: skip
    [log] = inspect_eval(jbb_response(data_dir=str(data_dir)), model=mock_model(outputs), log_dir=str(tmp_path),
                         display="none")  # fmt: skip
    lm = run_lm_eval(["guard_jbb_response"], FixedLM(outputs), metadata={"data_dir": str(data_dir)})["results"]
    assert log.results.scores[0].metrics["f1"].value == pytest.approx(want.f1)
    assert lm["guard_jbb_response"]["f1,none"] == pytest.approx(want.f1)
    assert 50 < want.f1 < 100 and want.parse_failures == 0
