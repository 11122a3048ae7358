"""The multi-process training path on CPU: guard-train under torchrun with 2 processes (DDP over gloo).

On GPUs `accelerate launch --config_file configs/accelerate/{ddp,fsdp,deepspeed_zero3}.yaml` starts the same entry
point through torchrun (its 1-GPU FSDP run is in docs/performance.md); on CPU, accelerate launches several processes
only through MPI, so the test starts torchrun itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent


def test_sft_data_parallel_over_two_processes(tiny_model, tmp_path):
    out = tmp_path / "sft"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
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
