#!/usr/bin/env python
"""Where an SFT step's time goes: ``guard-train sft``'s own trainer, timed step by step and profiled for a few steps.

Per optimizer step: wall time (the GPU synchronised at each step end); the steady rate counts the steps after the first
``--skip-steps`` (compilation, autotuning) and the ``--profile-steps`` after them, which run under torch.profiler:
its busiest kernels and CPU ops, the kernels launched per micro-batch and the share of the wall time the GPU was busy.
Writes ``profile.json`` and ``profile.txt`` under ``--out``.

    python benchmarks/profile_train.py --config configs/sft.yaml --set model=/tmp/llama-1b --set lora=false \\
        --set max_steps=8 --set data=guardreasoner:1B:aegis --out /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/sft.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--skip-steps", type=int, default=3, help="steps before the steady window and the profile")
    p.add_argument("--profile-steps", type=int, default=2, help="steps under torch.profiler (0: none)")
    p.add_argument("--no-cudnn-attention", action="store_true", help="torch.backends.cuda.enable_cudnn_sdp(False)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import torch
    from transformers import TrainerCallback

    from guard_train.config import load_config
    from guard_train.sft import SftConfig, build_trainer, training_examples
    from guard_train.training import resolve_model

    if args.no_cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(SftConfig, args.config, args.set + [f"output_dir={out / 'model'}"])
    model = resolve_model(cfg)
    examples, _ = training_examples(cfg, model)  # what guard-train sft trains on
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    profile_from, profile_to = args.skip_steps, args.skip_steps + args.profile_steps
    steps: list[float] = []
    profiler: list = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            sync()
            if state.global_step == profile_from and args.profile_steps:
                kinds = torch.profiler.ProfilerActivity
                profiler.append(torch.profiler.profile(activities=[kinds.CPU, *([kinds.CUDA] if cuda else [])]))
                profiler[0].__enter__()
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            sync()
            steps.append(time.perf_counter() - self.t0)
            if state.global_step == profile_to and profiler:
                profiler[0].__exit__(None, None, None)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = build_trainer(cfg, model, [ex.to_trl() for ex in examples])
    trainer.add_callback(StepClock())
    trainer.train()

    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h and "loss" in h]
    first = profile_to  # the steady window starts after the profiled steps (the profiler slows the host)
    steady = slice(first, len(steps))
    result = {
        "overrides": args.set, "step_s": [round(s, 4) for s in steps],
        "steady_steps": len(steps) - first,
        "steady_tokens_per_s": (tokens[-1] - tokens[first - 1]) / sum(steps[steady])
        if cfg.logging_steps == 1 and len(tokens) == len(steps) and len(steps) > first > 0 else None,
        "gpu_peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }  # fmt: skip
    text = [json.dumps({k: v for k, v in result.items() if k != "losses"})]
    if profiler:
        averages = profiler[0].key_averages()
        kernels = [e for e in averages if e.device_type.name == "CUDA"]  # the ops' rows repeat their kernels' time
        device_us = sum(e.self_device_time_total for e in kernels)
        window_s = sum(steps[profile_from:profile_to])
        micro = cfg.gradient_accumulation_steps * args.profile_steps
        result.update(profiled_steps=args.profile_steps, profiled_wall_s=window_s,
                      gpu_busy_share=device_us / 1e6 / window_s if cuda else None,
                      kernels_per_micro_batch=sum(e.count for e in kernels) / micro if cuda else None)  # fmt: skip
        text[0] = json.dumps({k: v for k, v in result.items() if k != "losses"})
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        text += [f"\n# by {sort}\n", averages.table(sort_by=sort, row_limit=30, max_name_column_width=70),
                 "\n# by self_cpu_time_total\n", averages.table(sort_by="self_cpu_time_total", row_limit=30,
                                                                 max_name_column_width=70)]  # fmt: skip
    (out / "profile.json").write_text(json.dumps(result, indent=1))
    (out / "profile.txt").write_text("\n".join(text))
    print(text[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
