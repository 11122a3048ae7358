"""Shipped published baselines: every number has a source, spot checks against the data MANIFEST, and the averaging
schemes reproduce the papers' printed averages from the per-benchmark cells."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guard_eval.averaging import average
from guard_eval.baselines import find_published, load_published_cells, published_baselines, published_cell


def test_every_shipped_cell_has_a_number_and_a_source():
    cells = load_published_cells()
    assert len(cells) == 648
    for c in cells:
        assert c.source.strip() and c.table.strip() and c.note.strip(), c
        assert re.fullmatch(r"\d{1,3}\.\d{1,2}", c.f1_text), c
        assert 0 <= c.f1 <= 100
        assert c.source_key in ("guardreasoner", "qwen3guard")
        assert c.citation.startswith(("GuardReasoner (arXiv", "Qwen3Guard Technical Report (arXiv"))


def test_shipped_csv_is_the_sourced_transcription():
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "published" / "guard_baselines.csv"
    if not shared.exists():
        pytest.skip("shared data not found")
    shipped = Path(__file__).resolve().parents[1] / "guard_eval" / "data" / "published_baselines.csv"
    assert shipped.read_bytes() == shared.read_bytes()


# Spot checks: the GuardReasoner MANIFEST prints these 1B/3B cells independently of the CSV.
MANIFEST_CELLS = {
    "GuardReasoner 1B": {"toxicchat": "72.43", "harmbench_prompt": "96.31", "openai_moderation": "70.06",
                         "aegis": "89.34", "simple_safety_tests": "98.99", "wildguard_prompt": "87.37",
                         "harmbench_response": "84.75", "safe_rlhf": "68.39", "beavertails": "85.84",
                         "xstest_response": "90.12", "wildguard_response": "74.81"},
    "GuardReasoner 3B": {"toxicchat": "78.20", "harmbench_prompt": "89.10", "openai_moderation": "71.87",
                         "aegis": "91.39", "simple_safety_tests": "100.00", "wildguard_prompt": "89.01",
                         "harmbench_response": "85.66", "safe_rlhf": "69.02", "beavertails": "86.72",
                         "xstest_response": "91.36", "wildguard_response": "79.70"},
}  # fmt: skip
MANIFEST_AVERAGES = {("GuardReasoner 1B", "prompt"): 77.68, ("GuardReasoner 3B", "prompt"): 80.76,
                     ("GuardReasoner 1B", "response"): 79.06, ("GuardReasoner 3B", "response"): 80.80}  # fmt: skip


def test_spot_check_against_the_guardreasoner_manifest():
    for model, cells in MANIFEST_CELLS.items():
        for bench, printed in cells.items():
            assert published_cell(model, bench).f1_text == printed, (model, bench)
    for (model, task), printed in MANIFEST_AVERAGES.items():
        assert published_baselines()[model.lower().replace(" ", "-")].averages[task].f1 == printed
    # and one Qwen3Guard cell per table kind, with its mode
    assert published_cell("Qwen3Guard-8B-Gen", "toxicchat", "strict").table.startswith("Table 2")
    assert published_cell("WildGuard-7B", "wildguard_refusal").f1_text == "88.6"


def test_guardreasoner_rows_reproduce_their_printed_weighted_averages():
    checked = 0
    for row in published_baselines().values():
        if row.source_key != "guardreasoner":
            continue
        for task, printed in row.averages.items():
            cells = {b: (c.f1, None) for b, c in row.cells.items() if c.task == task}
            if len(cells) < {"prompt": 6, "response": 5, "refusal": 2}[task]:
                continue  # a row with "-" cells
            assert average(cells, "weighted") == pytest.approx(printed.f1, abs=0.01), (row.name, task)
            checked += 1
    assert checked >= 60  # 20 prompt + 24 response + 20 refusal rows


@pytest.mark.parametrize("name", ["llamaguard3-8b", "llamaguard4-12b", "wildguard-7b@qwen3guard",
                                  "shieldgemma-9b@qwen3guard", "shieldgemma-27b", "nemoguard-8b", "polyguard-qwen-7b"])
def test_qwen3guard_baseline_rows_reproduce_their_printed_mean(name):
    row = published_baselines()[name]
    for task in ("prompt", "response"):
        cells = {b: (c.f1, None) for b, c in row.cells.items() if c.task == task}
        assert average(cells, "mean") == pytest.approx(row.averages[task].f1, abs=0.051), task


def test_baseline_names():
    assert [r.name for r in find_published("guardreasoner-8b")] == ["guardreasoner-8b"]
    assert {r.mode for r in find_published("qwen3guard-8b") if r.mode} == {"strict", "loose"}
    assert [r.name for r in find_published("wildguard-7b@qwen3guard")] == ["wildguard-7b@qwen3guard"]
    assert len(find_published("wildguard-7b")) == 2
    assert find_published("no-such-guard") == []
