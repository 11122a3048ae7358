"""Each training method runs a few steps on the tiny model, changes its parameters, and leaves a checkpoint that
``guard-eval run`` loads and labels from its metadata. SFT -> prefs -> DPO / GRPO / refine form one chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard_eval.cli import main as guard_eval
from guard_eval.modeling import checkpoint_metadata
from guard_train.cli import main as guard_train
from guard_train.dpo import DpoConfig
from guard_train.grpo import GrpoConfig
from guard_train.methods import get_method
from guard_train.prefs import PrefsConfig
from guard_train.refine import RefineConfig
from guard_train.sft import SftConfig, build_trainer

pytestmark = pytest.mark.slow

SMALL = {"per_device_train_batch_size": 2, "max_length": 512, "lora_r": 4, "lora_alpha": 8, "logging_steps": 1}


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if (path / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(str(path / name))


def changed(before: dict, after: dict) -> int:
    """How many tensors differ (adapters from one base share names)."""
    assert before.keys() == after.keys()
    return sum(not before[k].equal(after[k]) for k in before)


def evaluate(model: str, out: Path) -> dict:
    assert guard_eval(["run", "--model", model, "--benchmarks", "demo_prompt", "--limit", "2", "--max-new-tokens", "8",
                       "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def sft_dir(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sft")
    cfg = SftConfig(model=str(tiny_model), output_dir=str(out), data=["synthetic:demo_prompt"], limit=8, max_steps=6,
                    learning_rate=5e-3, synthetic_quote_words=0, merge=True, **SMALL)  # fmt: skip
    assert get_method("sft").run(cfg) == str(out)
    return out


@pytest.fixture(scope="module")
def pairs_file(sft_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prefs")
    cfg = PrefsConfig(model=str(sft_dir), output_dir=str(out), benchmarks=["demo_prompt"], limit=3, num_samples=2,
                      max_new_tokens=24, temperature=1.0, min_margin=0.0, batch_size=8)  # fmt: skip
    return Path(get_method("prefs").run(cfg))


def test_sft_trains_lora_saves_adapter_merged_weights_and_metadata(sft_dir, tiny_model, tmp_path):
    meta = checkpoint_metadata(str(sft_dir))
    assert meta["method"] == "sft" and meta["base"] == str(tiny_model) and meta["complete"]
    assert meta["data"]["n"] == 8 and meta["data"]["hash"].startswith("sha256:")
    assert meta["config"]["learning_rate"] == 5e-3 and meta["metrics"]["steps"] == 6
    assert meta["metrics"]["last_loss"] < meta["metrics"]["first_loss"]  # it learns
    assert meta["metrics"]["steps_per_s"] > 0 and meta["metrics"]["peak_rss_mib"] > 0
    assert changed(tensors(tiny_model), tensors(sft_dir / "merged")) > 0
    assert any(v.abs().sum() > 0 for k, v in tensors(sft_dir).items() if "lora_B" in k)  # B starts at zero
    results = evaluate(str(sft_dir), tmp_path / "eval")
    assert results["model"]["metadata"]["method"] == "sft" and results["benchmarks"]["demo_prompt"]["n"] == 2
    assert evaluate(str(sft_dir / "merged"), tmp_path / "eval-merged")["model"]["metadata"]["adapter"] is False


def test_sft_loss_covers_the_completion_only(tiny_model, tmp_path):
    from guard_train.data import load_traces

    cfg = SftConfig(model=str(tiny_model), output_dir=str(tmp_path), **SMALL)
    examples = load_traces(["synthetic:demo_prompt"], limit=1, quote_words=0)
    trainer = build_trainer(cfg, str(tiny_model), [ex.to_trl() for ex in examples])
    row = trainer.train_dataset[0]
    trained = [t for t in row["labels"] if t != -100]  # TRL masks the prompt's labels
    assert 0 < len(trained) < len(row["input_ids"])
    text = trainer.processing_class.decode(trained)
    assert text.startswith("# Task 1") and "Answers:" in text and "You are a classifier" not in text


def test_finished_output_is_reused_and_overwrite_redoes_it(sft_dir):
    meta = (sft_dir / "guard_bench.json").read_text()
    cfg = SftConfig(model="nonexistent-but-unused", output_dir=str(sft_dir))
    with pytest.raises(FileNotFoundError):  # validation still comes first
        get_method("sft").run(cfg)
    cfg = SftConfig(**json.loads(meta)["config"])
    assert get_method("sft").run(cfg) == str(sft_dir) and (sft_dir / "guard_bench.json").read_text() == meta
    older = json.loads(meta)  # saved before padding_free/attn_implementation existed: still this config
    older["config"] = {k: v for k, v in older["config"].items() if k not in ("padding_free", "attn_implementation")}
    try:
        (sft_dir / "guard_bench.json").write_text(json.dumps(older))
        assert get_method("sft").run(cfg) == str(sft_dir)
    finally:
        (sft_dir / "guard_bench.json").write_text(meta)
    cfg.max_steps += 1  # another config: refused, not silently answered with the old model
    with pytest.raises(ValueError, match=r"is finished with another config \(max_steps: 6 -> 7\).*overwrite"):
        get_method("sft").run(cfg)


def test_full_fine_tuning_from_the_cli(tiny_model, tmp_path):
    out = tmp_path / "full"
    assert guard_train(["sft", "--model", str(tiny_model), "--output-dir", str(out), "--lora", "false",
                        "--max-steps", "2", "--set", "limit=4", "--set", "data=[synthetic:demo_refusal]",
                        "--max-length", "512"]) == 0  # fmt: skip
    meta = checkpoint_metadata(str(out))
    assert meta["adapter"] is False and meta["config"]["lora"] is False and meta["data"]["n"] == 4
    assert changed(tensors(tiny_model), tensors(out)) > 0


def test_prefs_writes_scored_pairs_with_provenance(pairs_file, sft_dir):
    pairs = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    assert len(pairs) == 3
    for p in pairs:
        assert p["chosen_score"] >= p["rejected_score"] and p["margin"] == pytest.approx(p["chosen_score"] - p["rejected_score"])
        assert p["prompt"][0]["role"] == "user" and p["chosen"][0]["role"] == "assistant"
        assert set(p["chosen_rewards"]) == {"reasoning_quality", "label_accuracy"}
        assert p["provenance"]["model"] == str(sft_dir) and p["task"] == "prompt"
        expected = 0.7 * (p["chosen_rewards"]["reasoning_quality"] or 0) + 0.3 * (p["chosen_rewards"]["label_accuracy"] or 0)
        assert p["chosen_score"] == pytest.approx(expected, abs=1e-5)
    candidates = (pairs_file.parent / "candidates.jsonl").read_text().splitlines()
    assert len(candidates) == 6
    meta = checkpoint_metadata(str(pairs_file.parent))
    assert meta["method"] == "prefs" and meta["parent_method"] == "sft" and meta["metrics"]["pairs"] == 3


def test_dpo_from_the_sft_adapter_uses_the_sft_policy_as_reference(pairs_file, sft_dir, tmp_path):
    out = tmp_path / "dpo"
    cfg = DpoConfig(model=str(sft_dir), output_dir=str(out), data=str(pairs_file), max_steps=2, learning_rate=1e-2,
                    gradient_accumulation_steps=1, **SMALL)  # fmt: skip
    assert get_method("dpo").run(cfg) == str(out)
    assert changed(tensors(sft_dir), tensors(out)) > 0
    assert not (out / "ref").exists()
    meta = checkpoint_metadata(str(out))
    assert meta["parent"] == str(sft_dir) and meta["parent_method"] == "sft" and meta["base"] == checkpoint_metadata(str(sft_dir))["base"]
    assert meta["reference"] == "a frozen copy of the input adapter"
    # Before the first update policy == reference, so DPO's implicit rewards start at exactly 0.
    first = meta["metrics"]["log_history"][0]
    assert abs(first["rewards/chosen"]) < 1e-6 and abs(first["rewards/rejected"]) < 1e-6
    assert evaluate(str(out), tmp_path / "eval")["model"]["metadata"]["method"] == "dpo"


def test_grpo_with_weighted_builtin_rewards(sft_dir, tmp_path):
    out = tmp_path / "grpo"
    cfg = GrpoConfig(model=str(sft_dir), output_dir=str(out), benchmarks=["demo_prompt"], limit=2, num_generations=2,
                     max_completion_length=16, max_steps=2, learning_rate=1e-2, temperature=1.0, **SMALL,
                     rewards={"label_accuracy": 1.0, "format_valid": 0.5, "reasoning_quality": 0.5})  # fmt: skip
    assert get_method("grpo").run(cfg) == str(out)
    assert changed(tensors(sft_dir), tensors(out)) > 0
    meta = checkpoint_metadata(str(out))
    logged = set().union(*meta["metrics"]["log_history"])
    assert {"rewards/label_accuracy/mean", "rewards/format_valid/mean", "rewards/reasoning_quality/mean"} <= logged
    assert meta["reward_plugins"] == dict.fromkeys(cfg.rewards, "guard_train.default_rewards")
    assert evaluate(str(out), tmp_path / "eval")["model"]["metadata"]["method"] == "grpo"


def test_refine_rounds_log_and_train_on_refined_pairs(sft_dir, tmp_path):
    out = tmp_path / "refine"
    cfg = RefineConfig(model=str(sft_dir), output_dir=str(out), benchmarks=["demo_prompt"], limit=1, rounds=2,
                       threshold=1.01, num_samples=2, max_new_tokens=16, temperature=1.0, min_margin=0.0, max_steps=1,
                       learning_rate=1e-2, gradient_accumulation_steps=1, **SMALL)  # fmt: skip
    assert get_method("refine").run(cfg) == str(out)
    log = [json.loads(line) for line in (out / "refine_log.jsonl").read_text().splitlines()]
    assert [e["round"] for e in log] == [1, 2] and all(e["refined_pairs"] == 1 for e in log)
    assert log[0]["model_in"] == str(sft_dir) and log[1]["model_in"] == log[0]["model_out"]
    assert all(e["mean_score_after_refinement"] >= e["mean_score"] for e in log)
    assert changed(tensors(sft_dir), tensors(out)) > 0
    meta = checkpoint_metadata(str(out))
    assert meta["method"] == "refine" and len(meta["metrics"]["rounds"]) == 2
    assert evaluate(str(out), tmp_path / "eval")["model"]["metadata"]["method"] == "refine"


def test_pad_to_multiple_of_pads_batches_without_changing_the_losses(tiny_model, tmp_path):
    """Padding to a multiple (the CUDA default, for cuDNN's plan cache) shapes every batch and changes no loss; on CPU
    the default adds no padding; torch_compile reaches TRL's arguments."""
    from guard_train.data import load_traces

    records = [ex.to_trl() for ex in load_traces(["synthetic:demo"], limit=8, quote_words=0)]
    runs = {}
    for multiple in (None, 48):
        cfg = SftConfig(model=str(tiny_model), output_dir=str(tmp_path / str(multiple)), lora=False, max_steps=2,
                        learning_rate=1e-3, pad_to_multiple_of=multiple,
                        **{**SMALL, "per_device_train_batch_size": 4})  # fmt: skip
        trainer = build_trainer(cfg, str(tiny_model), records)
        widths = [batch["input_ids"].shape[1] for batch in trainer.get_train_dataloader()]
        trainer.train()
        runs[multiple] = widths, [h["loss"] for h in trainer.state.log_history if "loss" in h]
    (plain, losses), (padded, padded_losses) = runs[None], runs[48]
    assert any(w % 48 for w in plain) and all(w % 48 == 0 and w - 48 < p <= w for w, p in zip(padded, plain))
    assert len(losses) == 2 and padded_losses == pytest.approx(losses, rel=1e-5)
    args = build_trainer(SftConfig(model=str(tiny_model), output_dir=str(tmp_path / "c"), torch_compile=True, **SMALL),
                         str(tiny_model), records).args  # fmt: skip
    assert args.torch_compile and args.pad_to_multiple_of is None
    cfg = SftConfig(model=str(tiny_model), output_dir=str(tmp_path / "r"), max_steps=1, data=["synthetic:demo"],
                    limit=4, **SMALL)  # fmt: skip
    metrics = json.loads((Path(get_method("sft").run(cfg)) / "guard_bench.json").read_text())["metrics"]
    assert metrics["resolved"] == {"bf16": False, "pad_to_multiple_of": None}  # what "default" meant on this machine


def test_padding_free_sft_trains_the_same_examples_to_the_same_losses(tiny_model, tmp_path):
    """One sequence per micro-batch, no padding: the same truncated examples and per-step losses as the padded run."""
    from guard_train.data import load_traces

    records = [ex.to_trl() for ex in load_traces(["synthetic:demo"], limit=8, quote_words=0)]
    runs = {}
    with pytest.warns(UserWarning, match="padding_free with sdpa attention masks the whole micro-batch densely"):
        SftConfig(model="tiny", output_dir=str(tmp_path), padding_free=True).validate()
    for padding_free in (False, True):
        cfg = SftConfig(model=str(tiny_model), output_dir=str(tmp_path / str(padding_free)), lora=False, max_steps=3,
                        learning_rate=1e-3, padding_free=padding_free, **{**SMALL, "per_device_train_batch_size": 4,
                                                                          "max_length": 450})  # fmt: skip
        trainer = build_trainer(cfg, str(tiny_model), records)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.train()
        runs[padding_free] = (batch, trainer.train_dataset, trainer.state.log_history)
    (padded, data, logs), (flat, flat_data, flat_logs) = runs[False], runs[True]
    assert data["input_ids"] == flat_data["input_ids"] and max(map(len, data["input_ids"])) == 450  # truncated alike
    assert "attention_mask" not in flat and flat["input_ids"].shape[0] == 1  # one row, no padding
    assert flat["input_ids"].shape[1] == padded["attention_mask"].sum() < padded["input_ids"].numel()
    assert (flat["position_ids"] == 0).sum() == padded["input_ids"].shape[0]  # each example restarts at position 0
    losses = [h["loss"] for h in logs if "loss" in h]
    assert len(losses) == 3 and losses == pytest.approx([h["loss"] for h in flat_logs if "loss" in h], rel=1e-4)
