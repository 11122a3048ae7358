"""guard-eval end to end: score (reproducing published F1), run on the tiny model, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from guard_eval.benchmarks import Benchmark, read_simple
from guard_eval.cli import main
from guard_eval.default_benchmarks import BUILTIN_BENCHMARKS
from guard_eval.generation import GenerationConfig
from guard_eval.hookspecs import hookimpl
from guard_eval.plugins import get_plugin_manager
from guard_eval.selection import resolve_benchmarks
from guard_eval.results.rundir import read_records
from guard_eval.runner import EvalRun

ANSWER = "The request mentions {p}.\n---\nAnswers:\nRequest: harmful\nCompletion: refusal\nResponse: unharmful"


@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["1B", "3B"])
def test_score_reproduces_published_f1_within_one_point(data_dir, model, tmp_path):
    checked = 0
    for b in BUILTIN_BENCHMARKS:
        if model not in b.reference_predictions or not b.published_f1:
            continue
        out = tmp_path / f"{b.name}.json"
        path = data_dir / b.reference_predictions[model]
        assert main(["score", str(path), "--task", b.task.value, "--bootstrap", "0", "--json", str(out)]) == 0
        f1 = json.loads(out.read_text())[str(path)]["f1"]
        assert abs(f1 - b.published_f1[f"GuardReasoner-{model}"]) <= 1.0, (b.name, f1)
        checked += 1
    assert checked == 5


def test_score_rejects_malformed_predictions(tmp_path, capsys):
    bad = tmp_path / "pred.jsonl"
    bad.write_text('{"predict": "Answers: Request: harmful", "label": "harmful"}\n{not json}\n{"predict": "x", "label": "harmful"}\n')
    assert main(["score", str(bad), "--task", "prompt"]) == 1
    assert f"{bad}:2: invalid JSON" in capsys.readouterr().err
    bad.write_text('{"predict": "Answers: Request: harmful", "label": "harmful"}\n{"predict": "x"}\n')
    assert main(["score", str(bad), "--task", "prompt"]) == 1
    assert "record 2: KeyError" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.jsonl"), "--task", "prompt"]) == 1
    assert "predictions file not found" in capsys.readouterr().err


def test_run_unknown_benchmark_fails_before_loading_a_model(tmp_path, capsys):
    assert main(["run", "--model", "does/not-exist", "--benchmarks", "nope", "--output", str(tmp_path)]) == 1
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_embedded_default_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--model", "tiny", "--output", str(out), "--max-new-tokens", "4", "--no-progress", "--batch-size", "8"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and set(results["benchmarks"]) == {"demo_prompt", "demo_response", "demo_refusal"}
    records = read_records(out / "samples.jsonl")
    assert len(records) == 60 == len({r["id"] for r in records})
    # a random model cannot answer: every failure is counted and scored as wrong, and the scores are the records'
    for name, scores in results["benchmarks"].items():
        mine = [r for r in records if r["benchmark"] == name]
        assert scores["n"] == len(mine) > 0
        assert scores["parse_failures"] == sum(r["pred"] is None for r in mine)
        assert not any(r["correct"] for r in mine if r["pred"] is None)
        assert scores["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in mine) / len(mine))
    assert "weighted average (prompt)" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.shared_data
def test_run_real_benchmark_file_with_tiny_model(tiny_model, data_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["run", "--model", str(tiny_model), "--benchmarks", "xstest_refusal", "jbb_response", "--limit", "6",
            "--output", str(out), "--max-new-tokens", "4", "--no-progress", "--data-dir", str(data_dir)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert {k: v["n"] for k, v in results["benchmarks"].items()} == {"xstest_refusal": 6, "jbb_response": 6}
    assert results["averages"]["refusal"]["n"] == 6


class CountingBackend:
    """Answers 'harmful' for everything, counts prompts, and can crash after N calls."""

    name = "counting"

    def __init__(self, crash_after: int | None = None):
        self.calls, self.prompts, self.crash_after = 0, 0, crash_after

    def generate(self, prompts, config):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.prompts += len(prompts)
        return [[ANSWER.format(p=i)] * config.num_samples for i in range(len(prompts))]


def _run(backend, out, bootstrap=0, **kw):
    return EvalRun(backend=backend, benchmarks=resolve_benchmarks(["demo"]), output_dir=out,
                   model_info={"path": "fake"}, generation=GenerationConfig(batch_size=2), progress=False,
                   bootstrap=bootstrap, **kw).run()  # fmt: skip


def test_resume_skips_finished_samples_and_keeps_them(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(CountingBackend(crash_after=3), out)  # 3 chunks of 8 prompts written
    partial = read_records(out / "samples.jsonl")
    assert len(partial) == 24
    interim = json.loads((out / "results.json").read_text())
    assert interim["complete"] is False and interim["benchmarks"]["demo_prompt"]["n"] == 24
    # a kill in the middle of a write leaves a truncated last line: it is dropped on resume
    with (out / "samples.jsonl").open("a") as f:
        f.write('{"benchmark": "demo_response", "id": "demo_resp')
    backend = CountingBackend()
    results = _run(backend, out)
    assert backend.prompts == 60 - 24
    final = read_records(out / "samples.jsonl")
    assert final[:24] == partial and len({r["id"] for r in final}) == 60 == len(final)
    assert results["complete"] and results["benchmarks"]["demo_prompt"]["n"] == 24
    # everything answered "harmful": prompt F1 = 2*P*R/(P+R) with R=1, P=harmful share
    harmful = sum(r["gold"] == "harmful" for r in final if r["benchmark"] == "demo_prompt")
    assert results["benchmarks"]["demo_prompt"]["f1"] == pytest.approx(200 * harmful / (harmful + 24))


def _echo(prompt) -> list[str]:
    return [ANSWER.format(p=str(prompt)[-40:])]  # tells which prompt a completion was written for


class StreamingBackend:
    """Has ``stream``: yields each prompt's completion as it is "done" (last prompt first); can crash after N."""

    name = "streaming"

    def __init__(self, crash_after: int | None = None):
        self.calls, self.yielded, self.crash_after = 0, 0, crash_after

    def generate(self, prompts, config):
        raise AssertionError("a backend with stream is streamed, not called chunk by chunk")

    def stream(self, prompts, config):
        self.calls += 1
        for i in reversed(range(len(prompts))):
            if self.crash_after is not None and self.yielded >= self.crash_after:
                raise KeyboardInterrupt
            self.yielded += 1
            yield i, _echo(prompts[i])


class EchoBackend:
    name = "echo"

    def generate(self, prompts, config):
        return [_echo(p) for p in prompts]


def test_a_streaming_backend_gets_all_prompts_at_once_and_is_written_as_completions_arrive(tmp_path):
    """A backend that streams (as the HF backend does): one ``stream`` call for every prompt, a write every chunk
    (4 batches = 8) of completions in the order they end, a crash loses only the unwritten ones, and the records are
    those of a run through ``generate``, with the same metrics and bootstrap intervals (summarized in data order)."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(StreamingBackend(crash_after=19), out, bootstrap=50)
    partial = read_records(out / "samples.jsonl")
    assert len(partial) == 16 and json.loads((out / "results.json").read_text())["cost"]["items"] == 16
    backend = StreamingBackend()
    results = _run(backend, out, bootstrap=50)
    assert backend.calls == 1 and backend.yielded == 60 - 16 and results["complete"]
    assert list(results["benchmarks"]) == [b.name for b in resolve_benchmarks(["demo"])]  # not the arrival order
    final = read_records(out / "samples.jsonl")
    assert all(r in final for r in partial) and len({r["id"] for r in final}) == 60 == len(final)
    chunked = _run(EchoBackend(), tmp_path / "chunked", bootstrap=50)
    straight = read_records(tmp_path / "chunked" / "samples.jsonl")  # in the data's order, as is a finished stream's
    assert [(r["id"], r["output"]) for r in final] == [(r["id"], r["output"]) for r in straight]
    assert results["benchmarks"] == chunked["benchmarks"] and results["averages"] == chunked["averages"]


def test_a_stopped_streams_results_list_benchmarks_in_the_runs_order(tmp_path):
    """An unfinished streamed run's results.json (what a report reads mid-run) lists its benchmarks in the run's
    order, not in the order their completions arrived."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(StreamingBackend(crash_after=27), out)
    arrived = list(dict.fromkeys(r["benchmark"] for r in read_records(out / "samples.jsonl")))
    assert arrived == ["demo_refusal", "demo_response"]  # streamed last prompt first
    assert list(json.loads((out / "results.json").read_text())["benchmarks"]) == ["demo_response", "demo_refusal"]


def test_resume_refuses_other_settings(tmp_path):
    out = tmp_path / "run"
    _run(CountingBackend(), out)
    with pytest.raises(RuntimeError, match="written with other settings"):
        _run(CountingBackend(), out, prompt_variant="raw")


def test_num_samples_writes_k_records_per_prompt(tmp_path):
    out = tmp_path / "run"
    EvalRun(backend=CountingBackend(), benchmarks=resolve_benchmarks(["demo_refusal"]), output_dir=out,
            model_info={"path": "fake"}, generation=GenerationConfig(num_samples=3, temperature=0.8), progress=False,
            bootstrap=0).run()  # fmt: skip
    records = read_records(out / "samples.jsonl")
    assert len(records) == 48 and {r["sample"] for r in records} == {0, 1, 2}


@pytest.mark.slow
def test_killed_cli_run_resumes_without_redoing_work(tiny_model, tmp_path):
    """A real process killed midway (SIGKILL), then re-run: finished samples are kept verbatim."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "guard_eval.cli", "run", "--model", str(tiny_model), "--benchmarks", "demo",
           "--output", str(out), "--max-new-tokens", "24", "--batch-size", "1", "--no-progress"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = out / "samples.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not samples.exists() or len(read_records(samples)) < 8):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(samples)
    assert 8 <= len(before) < 60, "the run finished (or never started) before it could be killed"
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]  # say why, if a resume ever fails
    after = read_records(samples)
    kept = {json.dumps(r, sort_keys=True) for r in after}
    assert all(json.dumps(r, sort_keys=True) in kept for r in before) and len(after) == 60 == len({r["id"] for r in after})
    assert json.loads((out / "results.json").read_text())["complete"]


class _CommandPlugin:
    @hookimpl
    def guard_register_commands(self, program, subparsers):
        if program == "guard-eval":
            subparsers.add_parser("hello").set_defaults(func=lambda args: 7)

    @hookimpl
    def guard_register_benchmarks(self):
        return [Benchmark("extra", "prompt", "Extra", read_simple, local="demo_prompt.jsonl", embedded=True)]


def test_plugins_can_add_commands_and_benchmarks():
    get_plugin_manager().register(_CommandPlugin(), name="test-plugin")
    assert main(["hello"]) == 7
    assert [b.name for b in resolve_benchmarks(["extra"])] == ["extra"]


def test_data_parallel_shards_merge_into_one_run(tmp_path, monkeypatch, capsys):
    """Two ranks (as torchrun would launch them) split the samples; rank 0 merges; the merge equals a 1-process run."""
    from guard_eval import default_commands
    from guard_eval.results.rundir import merge_runs

    single = tmp_path / "single"
    _run(CountingBackend(), single)
    out = tmp_path / "dp"
    for k in (1, 0):
        _run(CountingBackend(), out / f"shard-{k}-of-2", shard=(k, 2))
    merged = merge_runs([out / "shard-0-of-2", out / "shard-1-of-2"], out, bootstrap=0)
    expected = json.loads((single / "results.json").read_text())
    assert merged["complete"]
    for name, m in expected["benchmarks"].items():
        assert (merged["benchmarks"][name]["n"], merged["benchmarks"][name]["f1"]) == (m["n"], m["f1"])
    assert sorted(r["id"] for r in read_records(out / "samples.jsonl")) == sorted(r["id"] for r in read_records(single / "samples.jsonl"))
    assert main(["merge", str(out)]) == 0 and "demo_prompt" in capsys.readouterr().out
    assert default_commands._wait_and_merge(out, 2, timeout_s=5)["complete"]
    with pytest.raises(ValueError, match="K/N"):
        default_commands._shard(type("A", (), {"shard": "2"})())


def test_a_runs_summaries_check_each_output_once(monkeypatch):
    """EvalRun summarizes after every chunk; with ``checked`` each output's consistency check runs once, not once per
    summary (which was quadratic in the run's length), and the metrics are those of a fresh summary."""
    import guard_eval.consistency as consistency
    from guard_eval.results.rundir import summarize

    contradicting = "Task 1 Conclusion: The request is unharmful.\n---\nAnswers:\nRequest: harmful"
    outputs = [contradicting, "Answers:\nRequest: harmful", contradicting, "Answers:\nRequest: unharmful"]
    records = [{"benchmark": "b", "task": "prompt", "id": str(i), "gold": "harmful", "output": out,
                "pred": out.rsplit(" ", 1)[-1]} for i, out in enumerate(outputs)]  # fmt: skip
    fresh = summarize(records, bootstrap=0)
    calls, real = [], consistency.contradicts
    monkeypatch.setattr(consistency, "contradicts", lambda out: calls.append(out) or real(out))
    checked: dict = {}
    summarize(records[:2], 0, checked)
    assert summarize(records, 0, checked) == fresh and fresh[0]["b"]["contradictions"] == 2
    assert sorted(calls) == sorted(set(outputs))  # three distinct outputs, each checked once over both summaries
