"""The experiment pipeline: stages run in order, cache their outputs, and resume after an interrupted stage."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from guard_eval.hookspecs import hookimpl
from guard_eval.plugins import get_plugin_manager
from guard_train.experiment import ExperimentConfig, run_experiment


@dataclass
class CopyConfig:
    model: str
    output_dir: str
    data: str | None = None
    note: str = field(default="", metadata={"help": "free text"})


class FakeMethods:
    """Training methods that copy the model (so stages are fast); ``fail_once`` interrupts one of them."""

    def __init__(self, fail_once: str | None = None):
        self.fail_once, self.calls = fail_once, []

    def _run(self, name):
        def run(cfg: CopyConfig) -> str:
            self.calls.append((name, cfg))
            if self.fail_once == name:
                self.fail_once = None
                raise KeyboardInterrupt
            out = Path(cfg.output_dir)
            if name == "fake_prefs":
                out.mkdir(parents=True, exist_ok=True)
                (out / "pairs.jsonl").write_text("{}\n")
                return str(out / "pairs.jsonl")
            shutil.copytree(cfg.model, out / "model")
            return str(out / "model")

        return run

    @hookimpl
    def guard_register_training_methods(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, config_cls=CopyConfig, run=self._run(n)) for n in ("fake_sft", "fake_prefs", "fake_dpo")]


def _config(tmp_path: Path, **extra) -> ExperimentConfig:
    raw = {
        "name": "test", "output_dir": str(tmp_path / "exp"), "model": "tiny",
        "eval": {"benchmarks": ["demo_refusal"], "limit": 4, "max_new_tokens": 4, "batch_size": 4},
        "sft": {"method": "fake_sft", "overrides": {"note": "x"}},
        "prefs": {"method": "fake_prefs"}, "train": {"method": "fake_dpo"}, **extra,
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return ExperimentConfig.from_yaml(path)


@pytest.mark.slow
def test_pipeline_runs_all_stages_and_resumes_after_an_interrupted_stage(tmp_path):
    methods = FakeMethods(fail_once="fake_dpo")
    get_plugin_manager().register(methods, name="fake-methods")
    config = _config(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, log=lambda m: None)
    assert [c[0] for c in methods.calls] == ["fake_sft", "fake_prefs", "fake_dpo"]
    sft_cfg = methods.calls[0][1]
    assert sft_cfg.note == "x" and sft_cfg.model.endswith("tiny-model")
    assert methods.calls[2][1].data.endswith("pairs.jsonl")

    log: list[str] = []
    outputs = run_experiment(config, log=log.append)
    assert "[eval_base] done earlier, skipped" in log and "[prefs] done earlier, skipped" in log
    assert [c[0] for c in methods.calls] == ["fake_sft", "fake_prefs", "fake_dpo", "fake_dpo"]
    assert list(outputs) == ["base", "sft", "eval_base", "judge_base", "prefs", "train", "eval_trained",
                             "judge_trained", "compare", "report"]  # fmt: skip
    report = Path(outputs["report"]["report"]).read_text()
    assert "## Success criteria" in report and "accuracy within +-2 points" in report
    assert Path(outputs["report"]["html"]).read_text().startswith("<!DOCTYPE html>")
    # identical copies of one model: accuracy unchanged (criterion met), reasoning quality unchanged (not met)
    met = {r["criterion"]: r["met"] for r in outputs["compare"]["criteria"]}
    assert met == {"accuracy within +-2 points of base": True, "reasoning quality +10%": False}
    assert json.loads((tmp_path / "exp" / "eval_trained" / "results.json").read_text())["reasoning_quality"]["n"] == 4

    # an edited config does not silently reuse stale stages; --restart-from redoes the named stage and later ones
    config.train.overrides = {"note": "changed"}
    with pytest.raises(ValueError, match="started with another config.*--restart-from"):
        run_experiment(config, log=lambda m: None)
    log.clear()
    run_experiment(config, restart_from="train", log=log.append)
    assert "[prefs] done earlier, skipped" in log and "[train] running" in log and "[report] running" in log
    assert methods.calls[-1][1].note == "changed"


def test_quick_eval_config_has_no_training_stages(tmp_path):
    config = _config(tmp_path)
    config.sft = config.prefs = config.train = None
    get_plugin_manager()  # no training methods needed
    outputs = run_experiment(config, log=lambda m: None)
    assert list(outputs) == ["base", "eval_base", "judge_base", "report"]


def test_bad_experiment_config_names_the_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\noutput_dir: o\nmodel: tiny\neval:\n  benchmarkz: [demo]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: eval: unknown key 'benchmarkz' \(did you mean 'benchmarks'\?\)"):
        ExperimentConfig.from_yaml(path)
    with pytest.raises(FileNotFoundError, match="experiment config not found"):
        ExperimentConfig.from_yaml(tmp_path / "missing.yaml")
