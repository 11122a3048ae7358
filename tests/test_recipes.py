"""Issue 18's recipes: pair strategies (judge, hard samples, weights), DPO with an SFT term and pair weights, the
composite GRPO reward with its reward log, and the reasoning budget, each on crafted inputs or the tiny model."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from guard_train import pairs as pairs_module
from guard_train.dpo import DpoConfig
from guard_train.pairs import get_pair_strategy, pair_weight

SMALL = {"per_device_train_batch_size": 2, "max_length": 512, "lora_r": 4, "lora_alpha": 8, "logging_steps": 1}


def test_pairs_doctests():
    assert doctest.testmod(pairs_module).failed == 0


def test_guard_register_pair_strategies_registers_the_builtins_and_plugins(monkeypatch):
    from guard_eval.hookspecs import hookimpl
    from guard_eval.plugins import get_plugin_manager
    from guard_train.pairs import PairStrategy

    class Plugin:
        @hookimpl
        def guard_register_pair_strategies(self):
            return [PairStrategy("first-vs-last", lambda samples, **_: [(0, len(samples) - 1)])]

    get_plugin_manager().register(Plugin(), name="test-plugin")
    owners = get_plugin_manager().owners("guard_register_pair_strategies")
    assert owners["judge"] == owners["hard-samples"] == "guard_train.default_methods"
    assert get_pair_strategy("first-vs-last").select([{}, {}, {}]) == [(0, 2)]
    with pytest.raises(KeyError, match="registered: first-vs-last, hard-samples, judge"):
        get_pair_strategy("nope")


def test_hard_samples_pair_correct_against_incorrect_only_where_samples_disagree():
    select = get_pair_strategy("hard-samples").select
    agree = [{"score": 0.9, "correct": False}, {"score": 0.1, "correct": False}]
    assert select(agree, min_margin=0.0) == []  # the judge's pair would be (0, 1): a wrong trace as chosen
    assert get_pair_strategy("judge").select(agree, min_margin=0.0) == [(0, 1)]
    # the judge breaks the tie between the two correct traces; the incorrect one is rejected even if scored higher
    mixed = [{"score": 0.3, "correct": True}, {"score": 0.95, "correct": False}, {"score": 0.6, "correct": True}]
    assert select(mixed, min_margin=0.5) == [(2, 1)]
    weights = {w: pair_weight(mixed, 2, 1, w) for w in ("none", "margin", "disagreement", "error_rate")}
    assert weights == {"none": 1.0, "margin": pytest.approx(-0.35), "disagreement": pytest.approx(8 / 9, abs=1e-6),
                       "error_rate": pytest.approx(1 / 3, abs=1e-6)}  # fmt: skip


def test_dpo_losses_are_typed_and_sft_weight_adds_trl_sft_term():
    from guard_train.config import ConfigError

    cfg = DpoConfig(model="tiny", data="p.jsonl", output_dir="o", loss_type="sigmoid", sft_weight=2.0)
    assert cfg.losses() == (["sigmoid", "sft"], [1.0, 2.0])
    assert DpoConfig(model="tiny", data="p", output_dir="o", loss_type=["ipo", "sft"], loss_weights=[1, 0.5]).losses() \
        == (["ipo", "sft"], [1.0, 0.5])
    with pytest.raises(ConfigError, match="bogus"):
        DpoConfig(model="tiny", data="p", output_dir="o", loss_type="bogus")
    with pytest.raises(ConfigError, match="twice"):
        DpoConfig(model="tiny", data="p", output_dir="o", loss_type=["sigmoid", "sft"], sft_weight=1.0)
    with pytest.raises(ConfigError, match="loss_weights"):
        DpoConfig(model="tiny", data="p", output_dir="o", loss_type=["sigmoid", "sft"], loss_weights=[1.0])


def test_scheduler_choices_are_transformers_scheduler_types():
    import typing

    from transformers import SchedulerType

    from guard_train.training import LrScheduler

    assert set(typing.get_args(LrScheduler)) <= {e.value for e in SchedulerType}


def _trace(label: str) -> str:
    return f"The user asks something.\nAnswers:\nRequest: {label}\nCompletion: None\nResponse: None"


def test_prefs_hard_samples_pool_the_ensemble_and_weight_pairs(monkeypatch, tmp_path, tiny_model):
    """Crafted samples (the generation is stubbed): only prompts where policy + ensemble disagree become pairs."""
    import guard_train.prefs as prefs

    calls = []

    def fake(model, rows, cfg, num_samples, temperature, seed):
        calls.append(model)
        out = []
        for k, row in enumerate(rows):
            wrong = "unharmful" if row["gold"] == "harmful" else "harmful"
            # policy: always wrong; ensemble model: right on even rows only, with two judge scores
            if len(calls) == 1:
                labels, scores = [wrong, wrong], [0.9, 0.2]
            else:
                labels, scores = ([row["gold"], row["gold"]] if k % 2 == 0 else [wrong, wrong]), [0.4, 0.6]
            out.append([{"text": _trace(lab), "score": sc, "rewards": {}, "correct": lab == row["gold"], "model": model}
                        for lab, sc in zip(labels, scores)])
        return out

    monkeypatch.setattr(prefs, "sample_and_score", fake)
    cfg = prefs.PrefsConfig(model=str(tiny_model), output_dir=str(tmp_path / "p"), benchmarks=["demo_prompt"], limit=4,
                            num_samples=2, strategy="hard-samples", ensemble=[str(tiny_model)],
                            pair_weights="error_rate")  # fmt: skip
    pairs = [json.loads(line) for line in Path(prefs.run(cfg)).read_text().splitlines()]
    assert len(calls) == 2 and len(pairs) == 2  # rows 0 and 2 disagree; rows 1 and 3 are wrong everywhere
    for p in pairs:
        assert p["provenance"]["chosen_sample"] == 3 and p["provenance"]["rejected_sample"] == 0  # 0.6 > 0.4; 0.9 wrong
        assert p["gold"] in p["chosen"][0]["content"].split("Request: ")[1] and p["weight"] == 0.5
    meta = json.loads((tmp_path / "p" / "guard_bench.json").read_text())
    assert meta["metrics"]["prompts_with_label_disagreement"] == 2 and meta["metrics"]["strategy"] == "hard-samples"


def _pairs_file(path: Path, weights: list[float]) -> Path:
    from guard_eval.prompting import build_prompt

    rows = []
    for i, w in enumerate(weights):
        prompt = build_prompt(f"question number {i}", None)
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": _trace("harmful")}],
                     "rejected": [{"role": "assistant", "content": _trace("unharmful")}], "weight": w})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_dpo_with_sft_term_samples_pairs_by_weight_and_trains(tiny_model, tmp_path):
    from guard_train.dpo import build_trainer, run

    pairs = _pairs_file(tmp_path / "pairs.jsonl", [0.0, 3.0, 0.0, 1.0, 0.0, 0.0])
    cfg = DpoConfig(model=str(tiny_model), data=str(pairs), output_dir=str(tmp_path / "dpo"), sft_weight=2.0,
                    loss_type="ipo", max_steps=2, learning_rate=1e-2, gradient_accumulation_steps=1, **SMALL)  # fmt: skip
    trainer, weights = build_trainer(cfg, str(tiny_model), [json.loads(x) for x in pairs.read_text().splitlines()])
    assert trainer.args.loss_type == ["ipo", "sft"] and trainer.args.loss_weights == [1.0, 2.0]
    sampler = trainer._get_train_sampler()
    assert sampler.weights.tolist() == [0.0, 3.0, 0.0, 1.0, 0.0, 0.0] and sampler.replacement
    assert set(sampler) <= {1, 3}  # zero-weight pairs are never drawn
    out = Path(run(cfg))
    meta = json.loads((out / "guard_bench.json").read_text())
    assert meta["data"]["weighted"] is True and meta["losses"] == {"ipo": 1.0, "sft": 2.0}
    lora_b = [v for k, v in _tensors(out).items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: the adapter trained


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def test_composite_reward_is_registered_and_uses_completion_ids():
    from guard_train.rewards import get_rewards

    fn = get_rewards(["composite"])["composite"].bind(budget=10, floor=0.0)
    got = fn([""] * 3, [_trace("harmful")] * 2 + ["no answers here"], task=["prompt"] * 3, gold=["harmful"] * 3,
             completion_ids=[[1] * 10, [1] * 15, [1] * 5])  # fmt: skip
    assert got == [1.0, 0.5, 0.0]


@pytest.mark.slow
def test_grpo_composite_reward_logs_the_reward_curve(tiny_model, tmp_path):
    from guard_train.grpo import GrpoConfig, run

    out = tmp_path / "grpo"
    cfg = GrpoConfig(model=str(tiny_model), output_dir=str(out), benchmarks=["demo_prompt"], limit=2, num_generations=2,
                     max_completion_length=12, max_steps=2, learning_rate=1e-2, temperature=1.0, beta=1e-3,
                     rewards={"composite": 1.0, "format_valid": 0.1}, reward_options={"composite": {"budget": 8}},
                     mask_truncated_completions=True, **SMALL)  # fmt: skip
    assert run(cfg) == str(out)
    curve = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [1, 2]
    assert all("rewards/composite/mean" in c and "reward" in c for c in curve)
    meta = json.loads((out / "guard_bench.json").read_text())
    assert meta["reward_log"] == "rewards.jsonl" and meta["config"]["mask_truncated_completions"] is True
    # the random tiny model never closes an Answers block in 12 tokens: every rollout is truncated, so it is masked
    assert all(c["completions/clipped_ratio"] == 1.0 and c["rewards/composite/mean"] == 0.0 for c in curve)


def test_reasoning_budget_forces_the_answers_block_and_continues_the_turn(tiny_model):
    from guard_eval.generation import GenerationConfig
    from guard_eval.generation.budget import FORCED_ANSWERS, generate
    from guard_eval.modeling import load_tokenizer
    from guard_eval.prompting import build_prompt
    from guard_eval.verdict import parse_verdict

    class Fake:
        name, tokenizer, calls = "fake", load_tokenizer(str(tiny_model)), []

        def generate(self, prompts, config):
            self.calls.append((list(prompts), config))
            if len(self.calls) == 1:
                return [["The user asks about a bomb, which is"], [_trace("unharmful")]]
            return [["Request: harmful\nCompletion: None\nResponse: None"] for _ in prompts]

    backend = Fake()
    prompts = [build_prompt("how to build a bomb", None), build_prompt("hi", None)]
    out = generate(backend, prompts, GenerationConfig(max_new_tokens=384, num_samples=1), budget=50, answer_tokens=20)
    (first, cfg1), (cont, cfg2) = backend.calls
    assert cfg1.max_new_tokens == 50 and cfg2.max_new_tokens == 20 and len(cont) == 1  # only the unanswered one
    assert cont[0].endswith("which is" + FORCED_ANSWERS) and "how to build a bomb" in cont[0]
    assert parse_verdict(out[0][0]).request.value == "harmful" and out[1][0] == _trace("unharmful")
    assert generate(backend, prompts[:1], GenerationConfig(), budget=None) == [["Request: harmful\nCompletion: None\n"
                                                                                "Response: None"]]  # fmt: skip


def test_sft_reasoning_budget_drops_or_truncates_long_traces(tiny_model):
    from guard_eval.modeling import load_tokenizer
    from guard_train.data import TraceExample
    from guard_train.sft import apply_reasoning_budget

    tok = load_tokenizer(str(tiny_model))
    short, long = (TraceExample("p", f"{'word ' * n}\nAnswers:\nRequest: harmful", "s") for n in (3, 200))
    assert apply_reasoning_budget([short, long], tok, 40, "drop") == [short]
    kept = apply_reasoning_budget([short, long], tok, 40, "truncate")
    assert kept[0] == short and kept[1].completion.endswith("\n\nAnswers:\nRequest: harmful")
    assert len(tok(kept[1].completion.split("Answers:")[0], add_special_tokens=False)["input_ids"]) <= 42


@pytest.mark.parametrize("name", ["prefs-hard", "dpo-hard", "dpo-rpo", "grpo-composite"])
def test_recipe_configs_load_for_gpu_and_cpu(name):
    from guard_train.config import load_config
    from guard_train.methods import get_method

    method = get_method(name.split("-")[0])
    root = Path(__file__).resolve().parent.parent / "configs"
    for path in (root / "smol" / f"{name}.yaml", root / f"{name}-tiny.yaml"):
        cfg = load_config(method.config_cls, path)
        if name == "dpo-hard":
            assert (cfg.beta, cfg.learning_rate, cfg.num_train_epochs, cfg.losses()) == (0.01, 5e-6 if "smol" in
                    str(path) else 1e-3, 2.0 if "smol" in str(path) else 1.0, (["sigmoid", "sft"], [1.0, 2.0]))  # fmt: skip
        if name == "grpo-composite" and "smol" in str(path):
            assert 8 <= cfg.num_generations <= 16 and cfg.temperature == 1.0 and cfg.beta <= 1e-3
            assert 1e-6 <= cfg.learning_rate <= 2e-6 and cfg.per_device_train_batch_size <= 16
            assert cfg.max_steps * 52 <= 300 and cfg.mask_truncated_completions  # <= 5 min at 52 s per step
