"""Bad configs, flags and plugins: each is refused with one line naming the file, field or plugin, and an exit code.

One row per bad input (issue 13 items 6-8): ``(name, setup, command, exit code, expected substring of the error)``.
``setup(tmp_path)`` writes what the command reads; ``{tmp}`` in the command is ``tmp_path``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from guard_eval.cli import main as guard_eval
from guard_train.cli import main as guard_train

GOOD_EXPERIMENT = {
    "name": "x", "output_dir": "{tmp}/exp", "model": "tiny",
    "eval": {"benchmarks": ["demo_prompt"], "limit": 2},
    "prefs": {"method": "prefs"}, "train": {"method": "dpo"},
}  # fmt: skip


def experiment(**changes):
    """A setup writing GOOD_EXPERIMENT with ``changes`` (``None`` removes a key; ``eval__limit`` sets a nested one)."""

    def setup(tmp: Path) -> None:
        raw = yaml.safe_load(yaml.safe_dump(GOOD_EXPERIMENT).replace("{tmp}", str(tmp)))
        for key, value in changes.items():
            target, _, leaf = key.rpartition("__")
            where = raw[target] if target else raw
            if value is None:
                where.pop(leaf)
            else:
                where[leaf] = value
        (tmp / "exp.yaml").write_text(yaml.safe_dump(raw))

    return setup


def text(name: str, content: str):
    return lambda tmp: (tmp / name).write_text(content)


def finished_sft(tmp: Path) -> None:
    """A finished guard-train sft output dir trained with max_steps=1."""
    from guard_train.metadata import write_metadata
    from guard_train.sft import SftConfig

    cfg = SftConfig(model="tiny", output_dir=str(tmp / "sft"), max_steps=1)
    write_metadata(tmp / "sft", "sft", "tiny", cfg.to_dict())


def plugin(name: str, source: str):
    """An installed distribution (module + .dist-info on sys.path) declaring ``name`` under the guard_bench group."""

    def setup(tmp: Path) -> None:
        (tmp / f"{name}.py").write_text(textwrap.dedent(source))
        info = tmp / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[guard_bench]\n{name} = {name}\n")

    return setup


ONE_BENCHMARK_NOT_A_LIST = """
from guard_eval.benchmarks import Benchmark, read_simple
from guard_eval.hookspecs import hookimpl
from guard_eval.verdict import TaskType

@hookimpl
def guard_register_benchmarks():
    return Benchmark("lonely", TaskType.PROMPT, "Lonely", read_simple, local="demo_prompt.jsonl", embedded=True)
"""

@pytest.fixture(autouse=True)
def _forget_plugin_modules():
    """The fake plugins are imported from tmp_path: drop them so no module leaks into later tests."""
    yield
    for name in ("guard_exit_plugin", "guard_single_plugin"):
        sys.modules.pop(name, None)


EXP = ["experiment", "{tmp}/exp.yaml"]
ROWS = [
    # 13.7: guard-train experiment validates the whole config before the first stage
    ("limit as text", experiment(eval__limit="two"), guard_train, EXP, 1, "exp.yaml: eval: limit: expected int, got str 'two'"),
    ("unknown benchmark (a string)", experiment(eval__benchmarks="demo_promptx"), guard_train, EXP, 1,
     "exp.yaml: eval: benchmarks: unknown benchmark 'demo_promptx'"),
    ("train without prefs", experiment(prefs=None), guard_train, EXP, 1, "exp.yaml: train: needs prefs:"),
    ("prefs without train", experiment(train=None), guard_train, EXP, 1, "exp.yaml: prefs: without train:"),
    ("unknown method", experiment(train={"method": "dpoo"}), guard_train, EXP, 1,
     "exp.yaml: train: method: unknown training method 'dpoo'; registered: dpo, grpo, prefs, refine, sft"),
    ("unknown key in a method override", experiment(train={"method": "dpo", "overrides": {"betta": 0.2}}), guard_train,
     EXP, 1, "exp.yaml: train: overrides: unknown key 'betta' (did you mean 'beta'?)"),
    ("missing method config file", experiment(train={"method": "dpo", "config": "nope.yaml"}), guard_train, EXP, 1,
     "exp.yaml: train: config: file not found: nope.yaml"),
    ("unknown key in a method config file", lambda tmp: (experiment(train={"method": "dpo", "config": "dpo.yaml"})(tmp),
                                                        (tmp / "dpo.yaml").write_text("bta: 0.1\n")), guard_train, EXP, 1,
     "exp.yaml: train: config dpo.yaml: unknown key 'bta'"),
    ("unknown judge", experiment(judge="heuristc"), guard_train, EXP, 1, "exp.yaml: judge: unknown judge 'heuristc'"),
    ("unknown key", experiment(modle="x"), guard_train, EXP, 1, "exp.yaml: unknown key 'modle' (did you mean 'model'?)"),
    ("bad YAML", text("exp.yaml", "name: x\neval: [unclosed\n"), guard_train, EXP, 1, "exp.yaml:3:1: invalid YAML:"),
    ("not a mapping", text("exp.yaml", "- a\n- b\n"), guard_train, EXP, 1, "exp.yaml: expected a mapping"),
    ("eval not a mapping", experiment(eval="demo"), guard_train, EXP, 1, "exp.yaml: eval: expected a mapping"),
    ("missing file", lambda tmp: None, guard_train, EXP, 1, "experiment config not found"),
    # 13.6: a finished output dir is reused only with the config it was trained with
    ("finished dir, other config", finished_sft, guard_train,
     ["sft", "--model", "tiny", "--output-dir", "{tmp}/sft", "--max-steps", "5"], 1,
     "is finished with another config (max_steps: 1 -> 5); pass --overwrite true"),
    # 13.8: plugins are isolated and named
    ("plugin calling sys.exit(3) at import", plugin("guard_exit_plugin", "import sys\nsys.exit(3)\n"), guard_eval,
     ["plugins"], 1, "plugin 'guard_exit_plugin' failed in import: SystemExit(3) at import"),
    ("hook returning one object", plugin("guard_single_plugin", ONE_BENCHMARK_NOT_A_LIST), guard_eval, ["plugins"], 1,
     "plugin 'guard_single_plugin' failed in guard_register_benchmarks: returned Benchmark"),
]


@pytest.mark.parametrize(("setup", "program", "argv", "code", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_gives_one_line_error_and_exit_code(setup, program, argv, code, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    assert program([a.replace("{tmp}", str(tmp_path)) for a in argv]) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "exp").exists()  # refused before the first stage


@pytest.mark.parametrize("plugin_setup", [plugin("guard_exit_plugin", "import sys\nsys.exit(3)\n"),
                                          plugin("guard_single_plugin", ONE_BENCHMARK_NOT_A_LIST)])  # fmt: skip
def test_a_broken_plugin_leaves_the_other_commands_working(plugin_setup, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin_setup(tmp_path)
    assert guard_eval(["benchmarks"]) == 0
    assert "toxicchat" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["my run #2", "2024", "runs/a: b", "'quoted'", "null-ish", "yes"])
def test_guard_train_flag_values_for_text_fields_stay_text(value, tmp_path):
    from guard_train.config import add_config_arguments, config_from_args
    from guard_train.sft import SftConfig

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SftConfig)
    args = parser.parse_args(["--model", "tiny", "--output-dir", value, "--max-steps", "3", "--set", f"data_dir={value}"])
    cfg = config_from_args(SftConfig, args)
    assert (cfg.output_dir, cfg.data_dir, cfg.max_steps) == (value, value, 3)


def test_finished_dir_with_the_same_config_is_reused(tmp_path, capsys):
    finished_sft(tmp_path)
    assert guard_train(["sft", "--model", "tiny", "--output-dir", str(tmp_path / "sft"), "--max-steps", "1"]) == 0
    assert "with this config; reusing it" in capsys.readouterr().out


def test_benchmarks_as_a_string_is_one_benchmark_not_letters(tmp_path):
    from guard_train.experiment import ExperimentConfig

    experiment(eval__benchmarks="demo_prompt")(tmp_path)
    config = ExperimentConfig.from_yaml(tmp_path / "exp.yaml")
    assert config.eval.benchmarks == ["demo_prompt"]
    config.validate()
