"""Issue 17 in the leaderboard: published rows with provenance, averaging schemes, reference scoring, the
reasoning-verdict consistency and cost columns, and the Pareto plot."""

from __future__ import annotations

import csv
import io
import json

import pytest

from guard_eval.cli import main
from guard_eval.results import build_table, load_runs, render
from guard_eval.results.readers import load_baseline

H, U = "harmful", "unharmful"
CONTRADICTING = "# Task 1\nConclusion for Task 1: The request is unharmful.\n---\nAnswers:\nRequest: harmful\n"
CONSISTENT = "# Task 1\nConclusion for Task 1: The request is harmful.\n---\nAnswers:\nRequest: harmful\n"


def write_run(run_dir, outputs: list[tuple[str, str]], cost: dict | None = None, tokens: int | None = None) -> None:
    """A guard-eval run dir on demo_prompt from (gold, output) pairs, written by the runner's own code."""
    from guard_eval.benchmarks import Sample
    from guard_eval.results.rundir import summarize, write_json_atomic
    from guard_eval.runner import record_for
    from guard_eval.verdict import TaskType

    run_dir.mkdir(parents=True)
    records = []
    for i, (gold, output) in enumerate(outputs):
        rec = record_for(Sample(f"demo_prompt-{i}", "demo_prompt", TaskType.PROMPT, f"p{i}", None, gold), output)
        if tokens is not None:
            rec["output_tokens"] = tokens
        records.append(rec)
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    benchmarks, averages = summarize(records, bootstrap=0)
    write_json_atomic(run_dir / "results.json", {"model": {"name": run_dir.name}, "complete": True, "cost": cost or {},
                                                 "benchmarks": benchmarks, "averages": averages})  # fmt: skip


def test_published_rows_carry_provenance_in_every_format(tmp_path):
    runs = load_baseline("guardreasoner-8b") + load_baseline("qwen3guard-8b")
    assert [r.kind for r in runs] == ["published"] * len(runs)
    table = build_table(runs, bootstrap=0)
    cell = table.cell("GuardReasoner 8B [published]", "toxicchat")
    assert cell.value == 78.79 and cell.n is None and cell.extra["provenance"]["table"].startswith("Table 1")
    md = render(table, "md")
    assert "_78.79_[1]" in md and "[1] published, not measured here: GuardReasoner (arXiv 2501.18492), Table 1" in md
    html = render(table, "html")
    assert '<em class="published"' in html and "<sup>[1]</sup>" in html
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert rows[0]["toxicchat_provenance"] == "published: GuardReasoner (arXiv 2501.18492), Table 1"
    assert {r["kind"] for r in rows} == {"published"}
    png = render(table, "png")
    assert png[:4] == b"\x89PNG"


def test_guardreasoner_rows_reproduce_printed_averages_under_weighted_and_published():
    for name, printed in (("guardreasoner-8b", (81.09, 81.22)), ("guardreasoner-1b@guardreasoner", (77.68, 79.06))):
        for scheme in ("weighted", "published"):
            table = build_table(load_baseline(name), bootstrap=0, average=scheme)
            row = table.rows[0][0].name
            assert table.cell(row, "avg:prompt").value == pytest.approx(printed[0], abs=0.01), (name, scheme)
            assert table.cell(row, "avg:response").value == pytest.approx(printed[1], abs=0.01), (name, scheme)
    mean = build_table(load_baseline("guardreasoner-8b"), bootstrap=0, average="mean")
    assert mean.columns[6].label == "mean" and "unweighted" in " ".join(mean.notes)
    assert mean.cell("GuardReasoner 8B [published]", "avg:prompt").value == pytest.approx(
        (78.79 + 91.86 + 72.00 + 90.18 + 99.50 + 89.17) / 6)


def test_qwen3guard_published_average_is_its_printed_best_of_modes():
    table = build_table(load_baseline("qwen3guard-8b-gen-strict"), bootstrap=0, average="published")
    cell = table.cell("Qwen3Guard-8B-Gen (strict) [published]", "avg:prompt")
    assert cell.value == 90.0 and "better of strict/loose" in cell.extra["provenance"]["note"]


def test_measured_and_published_rows_together_with_consistency_and_cost(tmp_path, capsys):
    run = tmp_path / "mine"
    write_run(run, [(H, CONTRADICTING), (H, CONSISTENT), (U, "Answers:\nRequest: unharmful"), (U, "no answer")],
              cost={"seconds_per_1k": 1234.5, "device": "NVIDIA H200"}, tokens=100)  # fmt: skip
    results = json.loads((run / "results.json").read_text())["benchmarks"]["demo_prompt"]
    assert (results["contradictions"], results["consistency_checked"]) == (1, 2)
    assert results["contradiction_rate"] == 50.0 and results["mean_output_tokens"] == 100
    runs = load_runs([str(run), "baseline:guardreasoner-8b"], bootstrap=0)
    table = build_table(runs, bootstrap=0)
    mine = table.cell("mine", "contradiction_rate")
    assert (mine.value, mine.n, mine.best) == (50.0, 2, False)
    assert table.cell("mine", "tokens").value == 100 and table.cell("mine", "seconds_per_1k").value == 1234.5
    assert "provenance" not in table.cell("mine", "demo_prompt").extra
    md = render(table, "md")
    assert "device: NVIDIA H200" in md and "contradictions %" in md
    # the Pareto plot needs a run with both F1 and tokens
    from guard_eval.results.renderers import pareto_points

    assert pareto_points(table) == [("mine", 100, table.cell("mine", "demo_prompt").value, True)]
    out = tmp_path / "lb.html"
    assert main(["leaderboard", str(run), "baseline:guardreasoner-8b", "--average", "weighted", "--bootstrap", "0",
                 "--output", str(out)]) == 0  # fmt: skip
    assert "<em class=\"published\"" in out.read_text()


def test_reference_scoring_flag_rescores_traces_and_leaves_published_cells(data_dir, capsys):
    argv = ["leaderboard", "baseline:guardreasoner-1b", "baseline:guardreasoner-1b@guardreasoner", "--bootstrap", "0",
            "--data-dir", str(data_dir)]  # fmt: skip
    assert main([*argv, "--scoring", "reference"]) == 0
    ref = capsys.readouterr().out
    assert main(argv) == 0
    strict = capsys.readouterr().out
    released = lambda md: next(line for line in md.splitlines() if line.startswith("| GuardReasoner-1B (released)"))  # noqa: E731
    # reference: the 2 unparsed harmful-gold aegis samples are dropped and the F1 is the published 89.34
    assert "89.3** (n=357, pf 1%)" in released(ref) or "89.3 (n=357, pf 1%)" in released(ref)
    assert "| 89.2 [" in released(strict) and "(n=359, pf 0%)" in released(strict)
    assert "_89.34_" in ref and "_89.34_" in strict
    assert "--scoring reference" in ref
