"""Turn a guard-train LoRA output dir into the adapter shipped in the package (guard_eval/data/adapters/NAME/).

    python benchmarks/ship_adapter.py runs/smol/sft guard_eval/data/adapters/guard-smol-135m-sft

Weights are stored in bfloat16 (half the size of the fp32 training output: 9.8 MB for r 16 on SmolLM2-135M), the
base is named by its model source (``smollm2-135m-instruct``: materialised wherever the adapter is pulled), and the
training metadata (config, data hash, metrics with the loss log) travels along as ``training.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def ship(src: Path, dst: Path, base: str = "smollm2-135m-instruct") -> None:
    import torch
    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    weights = load_file(src / "adapter_model.safetensors")
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()}, dst / "adapter_model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    config = json.loads((src / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base
    (dst / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    meta = json.loads((src / "guard_bench.json").read_text()) if (src / "guard_bench.json").is_file() else {}
    (dst / "training.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    if (src / "README.md").is_file():
        shutil.copy2(src / "README.md", dst / "README.md")


if __name__ == "__main__":
    ship(Path(sys.argv[1]), Path(sys.argv[2]))
