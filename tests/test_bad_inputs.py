"""Bad inputs and faults (issue 13): each row is an input, the one-line error it must give, its exit code, and what
must survive it. A row "holds" when the message, the code and the preserved data all check out."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from guard_eval.benchmarks import BenchmarkDataError
from guard_eval.selection import resolve_benchmarks
from guard_eval.cli import main
from guard_eval.generation import GenerationConfig
from guard_eval.results.rundir import RunDirError, read_records, set_aside, write_json_atomic, write_records
from guard_eval.runner import EvalRun, ResumeMismatchError

ANSWER = "Request: harmful\nCompletion: compliance\nResponse: harmful"


class Backend:
    name = "fake"

    def generate(self, prompts, config):
        return [[ANSWER] * config.num_samples for _ in prompts]


def run(out: Path, benchmarks=("demo_prompt",), **kw):
    gen = GenerationConfig(batch_size=2, num_samples=kw.pop("num_samples", 1))
    return EvalRun(backend=Backend(), benchmarks=resolve_benchmarks(benchmarks), output_dir=out, progress=False,
                   model_info={"path": "fake"}, generation=gen, bootstrap=0, **kw).run()  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# Each case: (setup(tmp) -> argv or callable, expected message, exit code, check(tmp) that nothing was lost).
def _score(tmp, text):
    return ["score", str(write(tmp / "p.jsonl", text)), "--task", "prompt", "--bootstrap", "0"]


CASES = {
    # 13.1 overwrite
    "overwrite a non-run folder": (
        lambda t: (write(t / "v" / "thesis.tex", "x"), ["run", "--model", "tiny", "--output", str(t / "v"), "--overwrite"])[1],
        "not a guard-eval run folder", 1, lambda t: (t / "v" / "thesis.tex").exists()),
    # 13.5 score strict parsing
    "score: empty file": (lambda t: _score(t, ""), "no records", 1, None),
    "score: truncated last line": (lambda t: _score(t, '{"predict": "Request: harmful", "label": "harmful"}\n{"pre'),
                                   "p.jsonl:2: invalid JSON", 1, None),
    "score: predict is an int": (lambda t: _score(t, '{"predict": 1, "label": "harmful"}\n'), "must be a string", 1, None),
    "score: predict is a list": (lambda t: _score(t, '{"predict": ["a"], "label": "harmful"}\n'), "must be a string", 1, None),
    "score: a non-object line": (lambda t: _score(t, "[1, 2]\n"), "expected a JSON object", 1, None),
    "score: a directory": (lambda t: ["score", str(t), "--task", "prompt"], "is a directory", 1, None),
    "score: missing file": (lambda t: ["score", str(t / "nope.jsonl"), "--task", "prompt"], "not found", 1, None),
    # 13.11 absent data, unknown names
    "named benchmark without data": (
        lambda t: ["run", "--model", "tiny", "--benchmarks", "wildguard_prompt", "--data-dir", str(t), "--output",
                   str(t / "o"), "--source", "local"],
        "wildguardtest/wildguardtest.jsonl", 1, lambda t: not (t / "o").exists()),
    "suite without any data": (
        lambda t: ["run", "--model", "tiny", "--benchmarks", "guardreasoner", "--data-dir", str(t), "--output",
                   str(t / "o"), "--source", "local"], "has data", 1, lambda t: not (t / "o").exists()),
    "unknown benchmark": (lambda t: ["run", "--model", "tiny", "--benchmarks", "nope", "--output", str(t / "o")],
                          "unknown benchmark 'nope'", 1, lambda t: not (t / "o").exists()),
    # 13.12 missing local model
    "--model ./missing": (lambda t: ["run", "--model", str(t / "runs" / "missing"), "--output", str(t / "o")],
                          "no such local path", 1, None),
    "--model a/b/c": (lambda t: ["run", "--model", "runs/does/notexist", "--output", str(t / "o")],
                      "no such local path", 1, None),
    "merge without shards": (lambda t: ["merge", str(t)], "no shard-K-of-N dirs", 1, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_bad_input(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    setup, message, code, kept = CASES[case]
    argv = setup(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert kept is None or kept(tmp_path)


def test_overwrite_moves_only_run_files_and_keeps_them_until_replaced(tmp_path):
    out = tmp_path / "v"
    run(out)
    write(out / "thesis.tex", "keep me")
    (out / ".git").mkdir()
    aside = set_aside(out)
    assert (out / "thesis.tex").exists() and (out / ".git").is_dir()
    assert (aside / "results.json").exists() and (aside / "samples.jsonl").exists()  # not deleted yet
    assert not (out / "results.json").exists()


def test_guard_train_overwrite_refuses_a_foreign_folder(tmp_path):
    from guard_train.training import _training_files

    write(tmp_path / "notes.txt", "x")
    with pytest.raises(RunDirError, match="not a guard-train output"):
        set_aside(tmp_path, _training_files, keep=("tiny-base",), what="a guard-train output (no guard_bench.json)")
    write(tmp_path / "guard_bench.json", "{}")
    aside = set_aside(tmp_path, _training_files, keep=("tiny-base",))
    assert (aside / "notes.txt").exists() and (aside / "guard_bench.json").exists()


@pytest.mark.parametrize("change", ["data_dir", "source", "backend_options"])
def test_resume_refuses_settings_that_change_outputs(change, tmp_path):
    out = tmp_path / "r"
    run(out)
    before = (out / "samples.jsonl").read_text()
    kw = {"data_dir": str(tmp_path), "source": "local", "backend_options": {"dtype": "bfloat16"}}[change]
    with pytest.raises(ResumeMismatchError, match=change):
        run(out, **{change: kw})
    assert (out / "samples.jsonl").read_text() == before


def test_resume_refuses_records_whose_input_changed(tmp_path):
    out = tmp_path / "r"
    run(out)
    records = read_records(out / "samples.jsonl")
    records[0].update(prompt="another prompt", input_hash=None)
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ResumeMismatchError, match="no longer has"):
        run(out)


def test_num_samples_resume_counts_completions(tmp_path):
    out = tmp_path / "r"
    run(out, limit=3, num_samples=2)
    lines = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # half-written last line
    results = run(out, limit=3, num_samples=2)
    m = results["benchmarks"]["demo_prompt"]
    assert results["complete"] and m["n"] == m["expected"] == 6


def test_suite_skips_absent_benchmarks_with_one_warning(tmp_path):
    data = tmp_path / "data"
    write(data / "guardreasoner" / "benchmark" / "x.json", "[]")
    warnings = []
    found = resolve_benchmarks(["demo", "refusal"], data, "local", check_data=True, warn=warnings.append)
    assert [b.name for b in found] == ["demo_prompt", "demo_response", "demo_refusal"]
    assert any("wildguardtest/wildguardtest.jsonl" in w and "wildguard_refusal" in w for w in warnings)
    with pytest.raises(BenchmarkDataError, match="xstest_refusal"):
        resolve_benchmarks(["xstest_refusal"], data, "local", check_data=True)


def test_results_json_is_world_readable(tmp_path):
    write_json_atomic(tmp_path / "results.json", {})
    assert stat.S_IMODE(os.stat(tmp_path / "results.json").st_mode) == 0o644


def test_csv_exports_neutralise_formulas(tmp_path):
    from guard_eval.results import build_table, load_runs, render
    from guard_eval.results.renderers import csv_safe

    assert csv_safe('=HYPERLINK("http://x")').startswith("'") and csv_safe("-1") == "'-1" and csv_safe(3) == 3
    run(tmp_path / "r")
    runs = load_runs([str(tmp_path / "r")], bootstrap=0)
    runs[0].name = "=HYPERLINK(1)"
    csv = render(build_table(runs, bootstrap=0), "csv")
    assert "\n'=HYPERLINK(1)," in csv


def test_superscript_item_id_is_a_404(tmp_path):
    from fastapi import HTTPException

    from guard_eval.human_eval.app import _item_id

    class DB:
        def item(self, i):
            return None

    with pytest.raises(HTTPException) as e:
        _item_id(DB(), "²")
    assert e.value.status_code == 404


def test_version_and_data_dir_printed(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "guard-eval" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GUARD_DATA_DIR", "rel/data")
    assert main(["benchmarks"]) == 0
    assert f"data dir: {tmp_path / 'rel' / 'data'}" in capsys.readouterr().out


def test_rewriting_a_runs_files_is_all_or_nothing(tmp_path):
    """A rewrite of samples.jsonl (on resume, and in the data's order when a run is complete) that fails midway
    leaves the old file whole and no temporary file behind."""
    path = write(tmp_path / "samples.jsonl", '{"a": 1}\n{"a": 2}\n')

    def records():
        yield {"a": 3}
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        write_records(path, records())
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n' and list(tmp_path.iterdir()) == [path]
    write_records(path, [{"a": 3}])
    assert read_records(path) == [{"a": 3}] and stat.S_IMODE(path.stat().st_mode) == 0o644
