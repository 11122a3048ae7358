"""Leaderboard and compare: numbers checked against hand-computed ones, for each source format and renderer."""

from __future__ import annotations

import csv
import io
import json
from math import comb

import numpy as np
import pytest

from guard_eval.cli import main
from guard_eval.leaderboard import build_table, compare_runs, load_path, load_runs, render
from guard_eval.leaderboard.compare import mcnemar_exact, paired_bootstrap
from guard_eval.results.model import BenchmarkResult, Outcome, weighted_f1_ci

H, U, R, C = "harmful", "unharmful", "refusal", "compliance"


def answer(label: str | None, task: str) -> str:
    """A GuardReasoner-format output whose parsed label for ``task`` is ``label`` (None: unparseable)."""
    if label is None:
        return "I am not sure what to say here."
    field = {"prompt": "Request", "response": "Response", "refusal": "Completion"}[task]
    return f"The request is about baking.\n\nAnswers:\n{field}: {label}\n"


def write_run(run_dir, name: str, benchmarks: dict[str, tuple[str, list[str], list[str | None]]]) -> None:
    """A guard-eval results dir, written by the runner's own record and summary code."""
    from guard_eval.benchmarks import Sample
    from guard_eval.results.rundir import summarize, write_json_atomic as _atomic_write_json
    from guard_eval.runner import record_for
    from guard_eval.verdict import TaskType

    run_dir.mkdir(parents=True)
    records = []
    for bench, (task, gold, pred) in benchmarks.items():
        for i, (g, p) in enumerate(zip(gold, pred)):
            sample = Sample(f"{bench}-{i}", bench, TaskType(task), f"prompt {i} of {bench}", None, g)
            records.append(record_for(sample, answer(p, task)))
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results, averages = summarize(records, bootstrap=0)
    _atomic_write_json(run_dir / "results.json", {"model": {"name": name}, "complete": True, "benchmarks": results,
                                                  "averages": averages})  # fmt: skip


# A: demo_prompt F1 = 2*1/(2*1+3+3) = 25.0 (2 of 8 right), harmbench_prompt 100, demo_refusal 2*1/(2+1) = 66.67
# B: demo_prompt 100 (all right), harmbench_prompt 2*1/(2+1) = 66.67 ; C: demo_prompt only (its prompt average is partial)
GOLD8 = [H, H, H, H, U, U, U, U]
RUN_A = {"demo_prompt": ("prompt", GOLD8, [H, U, U, U, U, H, H, H]), "harmbench_prompt": ("prompt", [H, U], [H, U]),
         "demo_refusal": ("refusal", [R, C], [R, None])}  # fmt: skip
RUN_B = {"demo_prompt": ("prompt", GOLD8, GOLD8), "harmbench_prompt": ("prompt", [H, U], [H, H])}
RUN_C = {"demo_prompt": ("prompt", GOLD8, [H, H, H, H, H, H, H, H])}  # F1 = 2*4/(8+4) = 66.67


@pytest.fixture
def runs(tmp_path):
    for name, spec in (("sft", RUN_A), ("dpo", RUN_B), ("partial", RUN_C)):
        write_run(tmp_path / name, name, spec)
    return tmp_path


def test_table_numbers_match_hand_computed(runs):
    table = build_table(load_runs([str(runs / n) for n in ("sft", "dpo", "partial")], bootstrap=200))
    # registry order within a task group (GuardReasoner sets before the demo sets), then the weighted average
    assert [c.key for c in table.columns] == ["harmbench_prompt", "demo_prompt", "avg:prompt", "demo_refusal"]
    cell = table.cell
    assert cell("sft", "demo_prompt").value == pytest.approx(25.0)
    assert cell("sft", "harmbench_prompt").value == pytest.approx(100.0)
    assert cell("sft", "avg:prompt").value == pytest.approx((8 * 25 + 2 * 100) / 10)  # weighted by samples: 40.0
    assert cell("sft", "demo_refusal").value == pytest.approx(200 / 3)
    assert cell("dpo", "avg:prompt").value == pytest.approx((8 * 100 + 2 * 200 / 3) / 10)
    assert cell("dpo", "demo_refusal").value is None
    assert cell("partial", "avg:prompt").value == pytest.approx(200 / 3) and cell("partial", "avg:prompt").partial
    # best: per column, partial averages excluded
    assert [cell(r, "demo_prompt").best for r in ("sft", "dpo", "partial")] == [False, True, False]
    assert [cell(r, "harmbench_prompt").best for r in ("sft", "dpo")] == [True, False]
    assert [cell(r, "avg:prompt").best for r in ("sft", "dpo", "partial")] == [False, True, False]
    assert not cell("sft", "demo_refusal").best  # a column with one value has no "best"
    lo, hi = cell("sft", "demo_prompt").ci
    assert lo <= 25.0 <= hi and hi > lo
    lo, hi = cell("sft", "avg:prompt").ci
    assert lo <= 40.0 <= hi


def test_weighted_average_interval_is_the_weighted_bootstrap(runs):
    """Against a plain loop: resample each benchmark, F1 each (sklearn), average with the sample weights."""
    from sklearn.metrics import f1_score

    run = load_path(runs / "sft")[0]
    results = [run.benchmarks["demo_prompt"], run.benchmarks["harmbench_prompt"]]
    rng = np.random.default_rng(7)
    values = np.zeros(300)
    for r in results:
        t, p = r.arrays()
        for b, idx in enumerate(rng.integers(0, r.n, size=(300, r.n))):
            values[b] += r.n / 10 * 100 * f1_score(t[idx], p[idx], zero_division=0.0)
    expected = tuple(np.quantile(values, [0.025, 0.975]))
    assert weighted_f1_ci(results, 300, seed=7) == pytest.approx(expected)


def test_markdown_csv_html_png(runs, tmp_path):
    table = build_table(load_runs([f"SFT={runs / 'sft'}", str(runs / "dpo")], bootstrap=100))
    md = render(table, "md")
    assert "| SFT " in md and "**100.0** [" in md and "weighted avg (prompt)" in md
    assert "Prompt harmfulness: harmbench_prompt, demo_prompt" in md
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [r["checkpoint"] for r in rows] == ["SFT", "dpo"]
    assert float(rows[0]["avg_prompt"]) == pytest.approx(40.0) and rows[0]["avg_prompt_n"] == "10"
    assert rows[1]["demo_refusal"] == "" and float(rows[0]["demo_prompt_ci_low"]) <= 25.0
    html = render(table, "html")
    assert html.count("<tr>") == 4 and 'colspan="3">Prompt harmfulness' in html and 'class="best' in html
    assert "data:image/png;base64," in html and "<link" not in html and "<script" not in html  # self-contained
    png = render(table, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(io.BytesIO(png)).shape[1] >= 600


def test_leaderboard_command_writes_each_format(runs, tmp_path, capsys):
    for suffix in ("md", "csv", "html", "png"):
        out = tmp_path / f"board.{suffix}"
        assert (
            main(["leaderboard", str(runs / "sft"), str(runs / "dpo"), "--output", str(out), "--bootstrap", "50"]) == 0
        )
        assert out.stat().st_size > 100
    assert "png: " in capsys.readouterr().out
    assert main(["leaderboard", str(runs), "--no-ci"]) == 0  # a folder of runs: one row each
    out = capsys.readouterr().out
    assert "| partial " in out and "66.7*" in out and "[" not in out.split("\n\n")[1]


def test_bad_runs_are_named(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "missing")]) == 1
    assert "run not found" in capsys.readouterr().err
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    assert main(["leaderboard", str(bad)]) == 1
    assert f"{bad}: not a guard-eval results dir, Inspect log or lm-eval results file" in capsys.readouterr().err
    run = tmp_path / "run"
    write_run(run, "x", {"demo_prompt": ("prompt", [H], [H])})
    (run / "samples.jsonl").write_text('{"benchmark": "demo_prompt", "task": "prompt"}\n' * 2)
    assert main(["leaderboard", str(run)]) == 1
    assert "samples.jsonl: record None lacks 'id'" in capsys.readouterr().err
    assert main(["leaderboard", "--format", "png"]) == 1
    assert main(["leaderboard", str(tmp_path / "run"), "--format", "png"]) == 1
    assert "needs --output" in capsys.readouterr().err


# -- compare ----------------------------------------------------------------------------------------------------------


def test_mcnemar_matches_the_binomial_formula():
    for b, c in [(0, 6), (1, 3), (7, 2), (5, 5)]:
        n, k = b + c, min(b, c)
        expected = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)
        assert mcnemar_exact(b, c) == pytest.approx(expected)


def test_compare_deltas_tests_and_disagreements(runs, capsys):
    a, b = load_runs([str(runs / "sft"), str(runs / "dpo")], bootstrap=0)
    result = compare_runs(a, b, resamples=500)
    demo = next(r for r in result.rows if r.benchmark == "demo_prompt")
    assert (demo.n_paired, demo.f1_a, demo.f1_b, demo.delta) == (8, 25.0, 100.0, 75.0)
    assert (demo.only_a_right, demo.only_b_right) == (0, 6)
    assert demo.p_mcnemar == pytest.approx(2 / 2**6)
    assert demo.delta_ci[0] >= 0 and demo.p_bootstrap < 0.05
    hb = next(r for r in result.rows if r.benchmark == "harmbench_prompt")
    assert (hb.only_a_right, hb.only_b_right, hb.p_mcnemar) == (1, 0, 1.0)
    assert result.pooled.only_a_right == 1 and result.pooled.only_b_right == 6
    assert result.pooled.accuracy_a == pytest.approx(100 * 4 / 10) and result.pooled.accuracy_b == pytest.approx(90.0)
    assert [(d["id"], d["pred_a"], d["pred_b"], d["right"]) for d in result.disagreements][:2] == [
        ("demo_prompt-1", U, H, "b"), ("demo_prompt-2", U, H, "b")]  # fmt: skip
    assert len(result.disagreements) == 7


def test_paired_bootstrap_matches_a_plain_loop():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    gold = [H if x else U for x in rng.random(40) < 0.5]
    pred_a = [g if rng.random() < 0.7 else (U if g == H else H) for g in gold]
    pred_b = [g if rng.random() < 0.85 else (U if g == H else H) for g in gold]
    a = BenchmarkResult.from_outcomes(
        "x", "prompt", [Outcome(str(i), g, p) for i, (g, p) in enumerate(zip(gold, pred_a))], 0
    )
    b = BenchmarkResult.from_outcomes(
        "x", "prompt", [Outcome(str(i), g, p) for i, (g, p) in enumerate(zip(gold, pred_b))], 0
    )
    ci, p = paired_bootstrap(a, b, 400, seed=3)
    t, pa = a.arrays()
    _, pb = b.arrays()
    deltas = np.array([100 * (f1_score(t[i], pb[i], zero_division=0.0) - f1_score(t[i], pa[i], zero_division=0.0))
                       for i in np.random.default_rng(3).integers(0, 40, size=(400, 40))])  # fmt: skip
    assert ci == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])))
    assert p == pytest.approx(min(1.0, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0))))


def test_compare_command(runs, tmp_path, capsys):
    out = tmp_path / "dis.jsonl"
    assert main(["compare", str(runs / "sft"), str(runs / "dpo"), "--show", "2", "--disagreements", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| demo_prompt " in text and "+75.0" in text and "0.031" in text and "7 disagreements (first 2):" in text
    assert len(out.read_text().splitlines()) == 7
    assert main(["compare", str(runs / "sft"), str(runs)]) == 1
    assert "compare needs two runs" in capsys.readouterr().err


# -- other sources ----------------------------------------------------------------------------------------------------


def _mock(text):
    from inspect_ai.model import ModelOutput, ModelUsage

    out = ModelOutput.from_content("mockllm", text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tiktoken download
    return out


def test_inspect_logs(tmp_path, runs):
    """A log written by Inspect itself, with a label scorer carrying the metadata contract and reasoning_quality."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import get_model
    from inspect_ai.scorer import Score, mean, scorer
    from inspect_ai.solver import generate

    from guard_eval.judging.inspect_scorer import reasoning_quality
    from guard_eval.verdict import parse_verdict

    @scorer(metrics=[mean()])
    def guard_label():
        async def score(state, target):
            pred = parse_verdict(state.output.completion).label("prompt")
            meta = {
                "gold": target.text,
                "pred": pred,
                "parse_error": pred is None,
                "benchmark": "demo_prompt",
                "task": "prompt",
            }
            return Score(value=float(pred == target.text), metadata=meta)

        return score

    gold, pred = RUN_A["demo_prompt"][1:]
    samples = [Sample(input=f"q{i}", target=g, id=f"demo_prompt-{i}", metadata={"task": "prompt", "prompt": f"prompt {i}"})
               for i, g in enumerate(gold)]  # fmt: skip
    model = get_model("mockllm/model", custom_outputs=[_mock(answer(p, "prompt")) for p in pred], memoize=False)
    logs = tmp_path / "logs"
    eval(Task(dataset=MemoryDataset(samples), solver=generate(), scorer=[guard_label(), reasoning_quality()], name="demo"),
         model=model, log_dir=str(logs), display="none", max_connections=1)  # fmt: skip
    (run,) = load_path(logs)
    assert run.kind == "inspect" and run.name == "mockllm/model"
    assert run.benchmarks["demo_prompt"].f1 == pytest.approx(25.0)
    assert run.reasoning_quality is not None and len(run.reasoning_scores) == 8
    # paired with the guard-eval run by sample id: the same predictions, so nothing differs
    same = compare_runs(load_path(runs / "sft")[0], run, resamples=50)
    assert same.rows[0].n_paired == 8 and same.disagreements == []
    table = build_table(load_runs([str(runs / "dpo"), str(logs)], bootstrap=50))
    assert table.cell("mockllm/model", "reasoning_quality").value == pytest.approx(run.reasoning_quality)
    assert table.columns[-1].key == "reasoning_quality"


def test_lm_eval_results(tmp_path):
    """The layout ``lm_eval --output_path OUT --log_samples`` writes; aggregates only when the samples are absent."""
    out = tmp_path / "lm" / "sft__model"
    out.mkdir(parents=True)
    stamp = "2026-11-25T10-00-00.000000"
    data = {
        "results": {"guard_demo_prompt": {"alias": "guard_demo_prompt", "f1,take_first": 25.0, "f1_stderr,take_first": "N/A"},
                    "guard_harmbench_prompt": {"alias": "guard_harmbench_prompt", "f1,take_first": 50.0}},
        "configs": {}, "versions": {}, "n-samples": {"guard_harmbench_prompt": {"original": 239, "effective": 239}},
        "config": {"model": "hf", "model_args": "pretrained=/ckpt/sft,dtype=float32"},
    }  # fmt: skip
    (out / f"results_{stamp}.json").write_text(json.dumps(data))
    gold, pred = RUN_A["demo_prompt"][1:]
    (out / f"samples_guard_demo_prompt_{stamp}.jsonl").write_text("".join(
        json.dumps({"doc_id": i, "doc": {}, "target": g, "filtered_resps": [answer(p, "prompt")], "filter": "take_first"}) + "\n"
        for i, (g, p) in enumerate(zip(gold, pred))))  # fmt: skip
    (run,) = load_path(tmp_path / "lm")
    assert (run.kind, run.name) == ("lm-eval", "/ckpt/sft")
    demo, hb = run.benchmarks["demo_prompt"], run.benchmarks["harmbench_prompt"]
    assert demo.f1 == pytest.approx(25.0) and demo.outcomes[1].key == "demo_prompt-1" and demo.f1_ci is not None
    assert (hb.f1, hb.n, hb.outcomes, hb.f1_ci) == (50.0, 239, None, None)
    (out / f"samples_guard_demo_prompt_{stamp}.jsonl").write_text('{"doc_id": 0}\n')
    with pytest.raises(ValueError, match=r"samples_guard_demo_prompt_.*\.jsonl: record 1: KeyError"):
        load_path(out / f"results_{stamp}.json")


@pytest.mark.shared_data
def test_jbb_baseline_rows(data_dir):
    """The stored judges against the human majority, recomputed by hand from the CSV."""
    rows = list(csv.DictReader(open(data_dir / "jbb" / "judge-comparison.csv", encoding="utf-8")))
    runs = load_runs([], ["jbb"], str(data_dir), bootstrap=0)
    assert [r.name for r in runs] == ["JBB harmbench_cf", "JBB gpt4_cf", "JBB llamaguard2_cf", "JBB llama3_cf"]
    for run in runs:
        col = run.name.split()[1]
        tp = sum(r[col] == "1" and r["human_majority"] == "1" for r in rows)
        fp = sum(r[col] == "1" and r["human_majority"] == "0" for r in rows)
        fn = sum(r[col] == "0" and r["human_majority"] == "1" for r in rows)
        assert run.benchmarks["jbb_response"].f1 == pytest.approx(200 * tp / (2 * tp + fp + fn))


@pytest.mark.slow
@pytest.mark.shared_data
def test_guardreasoner_baselines_compare(data_dir, capsys):
    """Released 1B vs 3B traces: HarmBench-prompt F1 as published (96.31 vs 89.10), judged, and compared."""
    assert main(["leaderboard", "baseline:guardreasoner-1b", "baseline:guardreasoner-3b", "--judge", "heuristic",
                 "--data-dir", str(data_dir), "--bootstrap", "0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| GuardReasoner-1B (released) " in out and "**96.3**" in out and "reasoning quality" in out
    assert main(["compare", "baseline:guardreasoner-1b", "baseline:guardreasoner-3b", "--data-dir", str(data_dir),
                 "--bootstrap", "200"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| harmbench_prompt    | 239  | 96.3 | 89.1" in out and "disagreements" in out


def test_command_choices_match_the_implementations():
    from guard_eval.leaderboard import commands
    from guard_eval.results import readers, renderers

    assert commands.FORMATS == renderers.FORMATS and commands.BASELINES == readers.BASELINES


def test_help_does_not_import_the_metric_stack():
    """`guard-eval --help` stays fast: registering the judge/leaderboard commands imports no scikit-learn,
    matplotlib or Inspect."""
    import subprocess
    import sys

    code = (
        "import argparse, sys\n"
        "from guard_eval import default_judges\n"
        "from guard_eval.leaderboard import commands\n"
        "sub = argparse.ArgumentParser().add_subparsers()\n"
        "default_judges.guard_register_judges()\n"
        "for plugin in (default_judges, commands):\n"
        "    plugin.guard_register_commands('guard-eval', sub)\n"
        "print(sorted(m for m in ('sklearn', 'matplotlib', 'inspect_ai', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_matplotlib_html_has_no_chart_and_png_says_what_to_install(runs, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    table = build_table(load_runs([str(runs / "sft")], bootstrap=0))
    page = render(table, "html")
    assert "<table" in page and "data:image/png" not in page
    assert main(["leaderboard", str(runs / "sft"), "--output", str(runs / "x.png")]) == 1
    assert "pip install 'guard-bench[report]'" in capsys.readouterr().err
