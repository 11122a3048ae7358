"""Training configs: YAML -> typed dataclasses, CLI overrides, and bad configs failing before any training starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from guard_train.cli import main as guard_train
from guard_train.config import ConfigError, load_config, parse_overrides
from guard_train.dpo import DpoConfig
from guard_train.grpo import GrpoConfig
from guard_train.methods import get_method, training_methods
from guard_train.sft import SftConfig

REPO = Path(__file__).resolve().parent.parent


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load_into_their_method(path):
    method = get_method(path.stem.split("-")[0])
    config = load_config(method.config_cls, path)
    assert isinstance(config, method.config_cls)


def test_dpo_example_config_has_the_plans_hyperparameters():
    c = load_config(DpoConfig, REPO / "configs" / "dpo.yaml")
    assert (c.beta, c.learning_rate, c.num_train_epochs, c.per_device_train_batch_size, c.gradient_accumulation_steps) == (
        0.1, 5e-6, 1.0, 4, 8)  # fmt: skip


def test_every_builtin_method_is_registered_with_help_on_every_field():
    methods = training_methods()
    assert {"sft", "prefs", "dpo", "grpo", "refine"} <= set(methods)
    for name in ("sft", "prefs", "dpo", "grpo", "refine"):
        for f in dataclasses.fields(methods[name].config_cls):
            assert f.metadata.get("help"), f"{name}.{f.name} has no help text"


def test_unknown_key_names_the_key_the_file_and_a_suggestion(tmp_path):
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\ndata: p.jsonl\nbetta: 0.2\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: unknown key 'betta' \(did you mean 'beta'\?\) for DpoConfig"):
        load_config(DpoConfig, path)


def test_wrong_type_names_the_key_and_the_file(tmp_path):
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\ndata: p.jsonl\nbeta: high\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: beta: expected float, got str 'high'"):
        load_config(DpoConfig, path)
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\nrewards: [label_accuracy]\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: rewards: expected a mapping"):
        load_config(GrpoConfig, path)
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\nmax_steps: 2.5\n")
    with pytest.raises(ConfigError, match=r"max_steps: expected int, got float 2.5"):
        load_config(SftConfig, path)


def test_bad_value_from_an_override_is_blamed_on_the_command_line(tmp_path):
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\ndata: p.jsonl\n")
    with pytest.raises(ConfigError, match=r"exp.yaml \+ command line: beta: expected float"):
        load_config(DpoConfig, path, ["beta=[1]"])
    with pytest.raises(ConfigError, match=r"command line: unknown key 'bta'"):
        load_config(DpoConfig, path, ["bta=1"])


def test_missing_required_key_and_range_checks(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['data'\] for DpoConfig"):
        load_config(DpoConfig, _yaml(tmp_path, "model: tiny\noutput_dir: out\n"))
    with pytest.raises(ConfigError, match=r"learning_rate: must be >= 0"):
        load_config(DpoConfig, _yaml(tmp_path, "model: tiny\noutput_dir: o\ndata: p\nlearning_rate: -1\n"))
    with pytest.raises(ConfigError, match=r"must be a multiple of num_generations \(3\)"):
        load_config(GrpoConfig, _yaml(tmp_path, "model: tiny\noutput_dir: o\nnum_generations: 3\n"))


def test_overrides_are_typed_and_merge_into_mappings(tmp_path):
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\nlearning_rate: 5e-6\nrewards: {label_accuracy: 1.0}\n")
    c = load_config(GrpoConfig, path, ["beta=0.2", "rewards.format_valid=0.5", "benchmarks=demo_prompt"])
    assert c.learning_rate == 5e-6 and isinstance(c.learning_rate, float)  # YAML 1.1 reads 5e-6 as a string
    assert c.beta == 0.2 and c.rewards == {"label_accuracy": 1.0, "format_valid": 0.5}
    assert c.benchmarks == ["demo_prompt"]
    assert parse_overrides(["x="]) == {"x": ""}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["beta"])


def test_missing_files_fail_before_any_model_is_loaded(tmp_path, monkeypatch):
    import guard_train.training as training

    monkeypatch.setattr(training, "load_policy", lambda *a: pytest.fail("a model was loaded"))
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=r"data: file not found: .*nope.jsonl"):
        get_method("dpo").run(DpoConfig(model="tiny", output_dir=str(out), data=str(tmp_path / "nope.jsonl")))
    with pytest.raises(FileNotFoundError, match=r"model: model not found: .*no-such-model"):
        get_method("sft").run(SftConfig(model=str(tmp_path / "no-such-model"), output_dir=str(out)))
    with pytest.raises(FileNotFoundError, match="model not found: someone/missing-model .*HF_HUB_OFFLINE"):
        SftConfig(model="someone/missing-model", output_dir=str(out)).validate()
    with pytest.raises(FileNotFoundError, match=r"data: file not found: traces.jsonl"):
        SftConfig(model="tiny", output_dir=str(out), data=["traces.jsonl"]).validate()
    with pytest.raises(KeyError, match=r"unknown reward\(s\) \['nope'\]; registered: .*label_accuracy"):
        GrpoConfig(model="tiny", output_dir=str(out), rewards={"nope": 1.0}).validate()
    with pytest.raises(KeyError, match="unknown benchmark 'nope'"):
        SftConfig(model="tiny", output_dir=str(out), data=["synthetic:nope"]).validate()
    assert not out.exists()


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = _yaml(tmp_path, "model: tiny\noutput_dir: out\ndata: p.jsonl\nbetta: 0.2\n")
    assert guard_train(["dpo", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("guard-train: error: ") and "unknown key 'betta'" in err and "\n" not in err
    assert guard_train(["dpo", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "config file not found" in capsys.readouterr().err


def test_cli_help_comes_from_the_config_metadata(capsys):
    with pytest.raises(SystemExit):
        guard_train(["dpo", "--help"])
    out = capsys.readouterr().out
    assert "--beta FLOAT" in out and "DPO temperature" in out and "(default: 0.1)" in out
