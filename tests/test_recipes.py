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
