"""The multi-process training path on CPU: guard-train under torchrun with 2 processes (DDP over gloo).

On GPUs `accelerate launch --config_file configs/accelerate/{ddp,fsdp,deepspeed_zero3}.yaml` starts the same entry
point through torchrun (its 1-GPU FSDP run is in docs/performance.md); on CPU, accelerate launches several processes
only through MPI, so the test starts torchrun itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    """A port nothing listens on: a fixed one collides with other test runs on the same host."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sft_data_parallel_over_two_processes(tiny_model, tmp_path):
    out = tmp_path / "sft"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "guard_train.cli", "sft", "--config", str(ROOT / "configs/sft-tiny.yaml"),
           "--set", f"model={tiny_model}", "--set", f"output_dir={out}", "--set", "max_steps=2",
           "--set", "per_device_train_batch_size=2", "--set", "max_length=256", "--set", "logging_steps=1"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((out / "guard_bench.json").read_text())
    assert meta["method"] == "sft" and meta["metrics"]["steps"] == 2 and meta["metrics"]["processes"] == 2
    assert meta["config"]["max_steps"] == 2
    before, after = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before), "data-parallel training changed no weight"


def _script(name: str):
    """A benchmarks/ script as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _multi_gpu_script():
    return _script("multi_gpu")


@pytest.mark.slow
def test_eval_data_parallel_equals_one_process_and_resumes_after_a_killed_rank(tiny_model, tmp_path):
    """`accelerate launch --num_processes 2 -m guard_eval.cli run` (2 CPU workers) merges to the 1-process result; a
    run whose rank 1 is SIGKILLed mid-shard, then re-run, holds every sample once and the same outputs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sharp = tmp_path / "sharp"  # large weights: varied outputs, so equal texts mean something
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    model.save_pretrained(sharp)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(sharp)
    out = tmp_path / "eval.json"
    script = _multi_gpu_script()
    script.main(["eval", "--cpu-smoke", "--model", str(sharp), "--workdir", str(tmp_path / "work"), "--benchmarks",
                 "demo", "--max-new-tokens", "48", "--batch-size", "2", "--kill-after", "4", "--json", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    reference = script.read_run(tmp_path / "work/eval-1")
    assert reference["n_records"] == 60 and len({r["output"] for r in reference["records"].values()}) > 30
    two = result["runs"]["2"]
    assert two["rc"] == 0 and two["compare"]["identical"], two
    kill = result["kill_and_resume"]
    assert kill["killed_pid"] and kill["launcher_rc"] != 0, kill  # the launcher saw the rank die
    assert 4 <= kill["records_when_killed"] < 30 and not kill["shard_complete_after_kill"], kill  # killed mid-shard
    assert kill["rerun_rc"] == 0
    assert kill["compare"] == {**kill["compare"], "missing": 0, "extra": 0, "duplicates": 0, "identical": True}


def test_round3_summary_reports_numbers_failures_and_missing_parts(tmp_path, capsys):
    summary = _script("round3_summary")
    (tmp_path / "eval.json").write_text(json.dumps({
        "benchmarks": ["aegis"], "max_new_tokens": 256, "batch_size": 64, "processes": 2,
        "runs": {"1": {"rc": 0, "seconds": 40.0, "samples_per_s": 28.6},
                 "2": {"rc": 0, "seconds": 21.0, "samples_per_s": 54.5, "speedup": 1.905, "efficiency": 0.952,
                       "compare": {"identical": False, "identical_outputs": 1100, "identical_verdicts": 1140,
                                   "reference_samples": 1144, "metrics_equal": False}}},
        "kill_and_resume": {"records_when_killed": 256, "launcher_rc": 1, "shard_complete_after_kill": False,
                            "rerun_rc": 0, "rerun_seconds": 20.5,
                            "compare": {"samples": 1144, "reference_samples": 1144, "missing": 0, "extra": 0,
                                        "duplicates": 0, "identical": False}}}))  # fmt: skip
    (tmp_path / "sft.json").write_text(json.dumps({"data": "d", "max_length": 1024, "rows": [
        {"processes": 1, "liger": False, "rc": 0, "per_device_batch": 4, "gradient_accumulation": 8, "steps_per_s": 0.7,
         "tokens_per_s": 16300.0, "speedup": 1.0, "efficiency": 1.0, "gpu_peak_allocated_gib": 20.2,
         "losses": [2.5, 2.25], "wall_s": 45},
        {"processes": 2, "liger": True, "rc": 1, "error_line": "ValueError: no CUDA"}]}))  # fmt: skip
    assert summary.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no gen.json" in out
    assert "| 2 | 0 | 21.0 | 54.5 | 1.91 | 95 | - | - | False | 1100/1144 | 1140/1144 | False |" in out
    assert "kill rank 1 at 256 records" in out and "missing 0, extra 0, duplicates 0" in out
    assert "| 1 | False | 4 x 8 x 1 | 0.700 | 16,300 | 1.00 | 100 | 20.2 | 2.500 2.250 | 45 |" in out
    assert "FAILED: ValueError: no CUDA" in out


def test_flipped_answers_flips_only_the_answer_lines():
    script = _multi_gpu_script()
    trace = ("The request is harmful? No: it is unharmful.\n\nAnswers: \nRequest: unharmful\nCompletion: compliance\n"
             "Response: harmful")  # fmt: skip
    flipped = script.flipped_answers(trace)
    assert flipped.startswith("The request is harmful? No: it is unharmful.")  # the reasoning is kept
    assert flipped.endswith("Request: harmful\nCompletion: refusal\nResponse: unharmful")
    heading_only = script.flipped_answers("# Answers\n\nRequest: harmful\nCompletion: None")
    assert heading_only.endswith("Request: unharmful\nCompletion: None")
    with pytest.raises(ValueError, match="no answer lines"):
        script.flipped_answers("I cannot tell.")


def test_train_variants_run_with_their_settings_and_compare_with_the_plain_one_process_run(monkeypatch, tmp_path):
    script = _multi_gpu_script()
    calls = []

    def fake_run(args, data, processes, liger, port, sets=()):
        calls.append((processes, liger, sets))
        return {"processes": processes, "liger": liger, "sets": list(sets), "steps_per_s": 1.0 + len(sets)}

    monkeypatch.setattr(script, "train_run", fake_run)
    args = argparse.Namespace(
        what="sft", processes=1, liger=True, variant=["padding_free=true", "padding_free=true,use_liger_kernel=true"],
        workdir=str(tmp_path), sft_data="synthetic:demo", model="m", max_length=64, lora=False, deadline=None, port=0,
        json=None)  # fmt: skip
    rows = script.train_scaling(args)["rows"]
    assert calls == [(1, False, ()), (1, True, ()), (1, False, ("padding_free=true",)),
                     (1, False, ("padding_free=true", "use_liger_kernel=true"))]  # fmt: skip
    assert [r["speedup"] for r in rows] == [1.0, 1.0, 2.0, 3.0]  # variants against the plain no-Liger run


def test_profile_train_times_every_step_and_profiles_the_chosen_ones(tiny_model, tmp_path):
    """benchmarks/profile_train.py on CPU: one time per optimizer step, the steady rate from the steps after the
    skipped and profiled ones, and the profiler's tables."""
    script = _script("profile_train")
    out = tmp_path / "prof"
    sets = [f"model={tiny_model}", "lora=false", "max_steps=5", "logging_steps=1", "data=synthetic:demo",
            "per_device_train_batch_size=2", "max_length=256", "pad_to_multiple_of=32"]  # fmt: skip
    assert script.main(["--config", str(ROOT / "configs/sft-tiny.yaml"), "--skip-steps", "1", "--profile-steps", "2",
                        "--out", str(out), *(a for s in sets for a in ("--set", s))]) == 0  # fmt: skip
    result = json.loads((out / "profile.json").read_text())
    assert len(result["step_s"]) == 5 and len(result["losses"]) == 5 and result["steady_steps"] == 2
    assert result["steady_tokens_per_s"] > 0 and result["profiled_steps"] == 2
    text = (out / "profile.txt").read_text()
    assert "# by self_cpu_time_total" in text and "aten::mm" in text
