"""What the TRL-based methods share: trainer options, loading the policy (full or LoRA), saving and measuring.

Policies: a LoRA adapter dir is loaded on its base and trained further (TRL keeps a frozen copy of the adapter as
the reference, so DPO/GRPO's reference is exactly that policy); a full model gets a fresh LoRA adapter (``lora: true``;
the reference is then the same model with the adapter disabled, i.e. the input model again) or is trained in full.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from guard_eval.modeling import adapter_base, checkpoint_metadata, is_adapter
from guard_eval.results.rundir import set_aside
from guard_train.config import ConfigError, MethodConfig, option
from guard_train.metadata import is_finished, write_metadata


# transformers' SchedulerType values (tests/test_train_config.py checks they still are)
LrScheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                      "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                      "warmup_stable_decay"]  # fmt: skip
Dtype = Literal["float32", "bfloat16", "float16"]
# transformers' attn_implementation values (flash_attention_2/3 need the flash-attn package)
Attention = Literal["sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3"]
# SDPA's cuDNN kernel builds a plan per sequence length (~1.5 ms of host time a layer call): padding to a multiple
# of 64 leaves at most max_length / 64 lengths (docs/performance.md, "Round 6")
GPU_PAD_MULTIPLE = 64


@dataclass(kw_only=True)
class TrainConfig(MethodConfig):
    """Options of every TRL trainer run, with the names TRL uses."""

    learning_rate: float = option(1e-4, help="peak learning rate", min=0)
    num_train_epochs: float = option(1.0, help="passes over the data (ignored when max_steps > 0)", min=0)
    max_steps: int = option(-1, help="stop after this many optimizer steps (-1: run the epochs)")
    per_device_train_batch_size: int = option(4, help="examples per device per forward pass", min=1)
    gradient_accumulation_steps: int = option(1, help="forward passes per optimizer step", min=1)
    max_length: int = option(1024, help="tokens per example (prompt + completion); longer ones are cut", min=16)
    warmup_steps: float = option(0.0, help="linear learning-rate warm-up: steps, or a share of all steps if < 1", min=0)
    lr_scheduler_type: LrScheduler = option("linear", help="transformers scheduler name (linear, cosine, constant, ...)")
    logging_steps: int = option(1, help="log the loss every N steps", min=1)
    lora: bool = option(True, help="train a LoRA adapter (false: full fine-tuning); an adapter input is always "
                        "trained further as an adapter")  # fmt: skip
    lora_r: int = option(16, help="LoRA rank", min=1)
    lora_alpha: int = option(32, help="LoRA scaling numerator", min=1)
    lora_dropout: float = option(0.05, help="dropout on the LoRA input", min=0)
    lora_target_modules: str = option("all-linear", help="modules to adapt (PEFT's 'all-linear' or a comma list)")
    merge: bool = option(False, help="also save merged full weights to OUTPUT_DIR/merged (a LoRA run)")
    gradient_checkpointing: bool = option(False, help="recompute activations to save memory")
    bf16: bool | None = option(None, help="bfloat16 training (default: on when a CUDA GPU is present)")
    dtype: Dtype | None = option(None, help="load dtype (float32, bfloat16; default: bf16 on GPU, fp32 on CPU)")
    use_liger_kernel: bool = option(False, help="Liger's fused RMSNorm/rotary/SwiGLU Triton kernels in training "
                                    "(TRL's use_liger_kernel; needs a CUDA GPU and pip install 'guard-bench[gpu]')")
    pad_to_multiple_of: int | None = option(None, help="pad each batch to a multiple of this many tokens (default: "
                                            "64 on a CUDA GPU, where cuDNN's attention then reuses its plans: "
                                            "SFT/DPO 1.2-1.6x tokens/s; 1: no extra padding)", min=1)  # fmt: skip
    torch_compile: bool = option(False, help="torch.compile the policy (TrainingArguments.torch_compile): faster "
                                 "steps after minutes of compiling (docs/performance.md)")
    attn_implementation: Attention | None = option(None, help="the policy's attention (transformers' "
                                                   "attn_implementation; default sdpa); flex_attention: padding-free "
                                                   "SFT without flash-attn (docs/performance.md)")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        if self.use_liger_kernel:
            try:
                import liger_kernel  # noqa: F401
            except ImportError:
                raise ModuleNotFoundError("use_liger_kernel: liger-kernel is not installed (pip install 'guard-bench[gpu]')") from None
            if not _gpu():
                raise ValueError("use_liger_kernel: Liger's kernels are Triton kernels and need a CUDA GPU")


def _training_files(out: Path) -> list[Path]:
    """Everything in an output dir that a method wrote (it has guard_bench.json or checkpoints), but the tiny base."""
    if not ((out / "guard_bench.json").exists() or any(out.glob("checkpoint-*"))):
        return []
    return [p for p in out.iterdir() if p.name not in (".replaced", "tiny-base")]


def start(cfg: MethodConfig) -> str | None:
    """Validate ``cfg`` and prepare its output dir; the finished output when there is one to reuse, else ``None``."""
    cfg.validate()
    out = Path(cfg.output_dir)
    if is_finished(out) and not cfg.overwrite:
        defaults = {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(cfg)
                    if f.default is not MISSING or f.default_factory is not MISSING}  # fmt: skip
        changed = config_changes(checkpoint_metadata(str(out)).get("config", {}), cfg.to_dict(), defaults)
        if changed:
            raise ConfigError(f"{out} is finished with another config ({'; '.join(changed)}); pass --overwrite true "
                              "(overwrite: true) to retrain it, or use another output_dir")  # fmt: skip
        print(f"{out} is finished (guard_bench.json) with this config; reusing it (overwrite: true redoes it)")
        return str(out)
    if cfg.overwrite:  # moved to OUTPUT_DIR/.replaced, deleted once the new output is finished (write_metadata)
        set_aside(out, _training_files, keep=("tiny-base",), what="a guard-train output (no guard_bench.json)")
    out.mkdir(parents=True, exist_ok=True)
    return None


def config_changes(saved: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """``["max_steps: 1 -> 5", ...]``: what differs between a finished run's saved config and a new one. An option
    the saved config lacks (added to guard-train since) is no change while it has its value in ``defaults``.

    >>> config_changes({"max_steps": 1, "overwrite": False, "lora_r": 8}, {"max_steps": 5, "overwrite": False, "lora_r": 8})
    ['max_steps: 1 -> 5']
    >>> config_changes({"max_steps": 1}, {"max_steps": 1, "padding_free": False}, {"padding_free": False})
    []
    """
    new, defaults = json.loads(json.dumps([new, defaults or {}], default=str))  # saved went through JSON: tuples=lists
    added = {k for k in set(new) - set(saved) if k in defaults and new[k] == defaults[k]}
    keys = sorted((set(saved) | set(new)) - {"overwrite"} - added)
    show = lambda d, k: repr(d[k]) if k in d else "(unset)"  # noqa: E731
    return [f"{k}: {show(saved, k)} -> {show(new, k)}" for k in keys if saved.get(k, ...) != new.get(k, ...)]


def resolve_model(cfg: MethodConfig) -> str:
    """``tiny`` -> the embedded tiny Llama, built once into ``OUTPUT_DIR/tiny-base``; a named model source or a
    ``*.gguf`` file -> its cached HF dir; anything else as is."""
    if cfg.model != "tiny":
        from guard_eval.model_sources import resolve

        return resolve(cfg.model)
    from guard_eval.tiny import build_tiny_model

    path = Path(cfg.output_dir) / "tiny-base"
    if not (path / "config.json").is_file():
        build_tiny_model(path, seed=cfg.seed)
    return str(path.resolve())


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def load_policy(model: str, cfg: TrainConfig):
    """(trainable model, peft_config for the trainer or None) for ``model``."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, cfg.dtype) if cfg.dtype else (torch.bfloat16 if _gpu() else torch.float32)
    if is_adapter(model):
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(adapter_base(model), dtype=dtype,
                                                    attn_implementation=cfg.attn_implementation)
        return PeftModel.from_pretrained(base, model, is_trainable=True), None
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, attn_implementation=cfg.attn_implementation)
    if not cfg.lora:
        return policy, None
    from peft import LoraConfig

    targets = cfg.lora_target_modules
    return policy, LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
    )  # fmt: skip


def load_tokenizer(model: str):
    """The policy's tokenizer, right-padded for training (guard_eval's is left-padded for generation)."""
    from guard_eval.modeling import load_tokenizer as _load

    tokenizer = _load(model)
    tokenizer.padding_side = "right"
    return tokenizer


def trainer_args(cfg: TrainConfig, **extra: Any) -> dict[str, Any]:
    """Keyword arguments shared by SFTConfig, DPOConfig and GRPOConfig."""
    gpu = _gpu()
    return dict(
        output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type, logging_steps=cfg.logging_steps, seed=cfg.seed,
        bf16=gpu if cfg.bf16 is None else cfg.bf16, use_cpu=not gpu, gradient_checkpointing=cfg.gradient_checkpointing,
        use_liger_kernel=cfg.use_liger_kernel, torch_compile=cfg.torch_compile,
        pad_to_multiple_of=cfg.pad_to_multiple_of or (GPU_PAD_MULTIPLE if gpu else None),
        save_strategy="no", report_to=[], disable_tqdm=True, **extra,
    )  # fmt: skip


class Measure:
    """Wall time, steps/s and peak memory of a training run (process peak RSS: run one method per process to
    attribute it; GPU peak allocated when on CUDA)."""

    def __enter__(self) -> Measure:
        self.t0 = time.perf_counter()
        self.rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if _gpu():
            import torch

            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall_s = time.perf_counter() - self.t0
        self.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.gpu_peak_mib = None
        if _gpu():
            import torch

            self.gpu_peak_mib = torch.cuda.max_memory_allocated() / 2**20

    def metrics(self, trainer=None) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": round(self.wall_s, 3), "peak_rss_mib": round(self.peak_rss_mib, 1),
                               "rss_mib_at_start": round(self.rss0, 1)}  # fmt: skip
        if self.gpu_peak_mib is not None:
            out["gpu_peak_allocated_mib"] = round(self.gpu_peak_mib, 1)
        if trainer is not None:
            state = trainer.state
            final = next((h for h in reversed(state.log_history) if "train_runtime" in h), {})
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            args = trainer.args  # the values the config's automatic defaults (None) resolved to on this machine
            out["resolved"] = {"bf16": args.bf16, "pad_to_multiple_of": args.pad_to_multiple_of}
            out.update(processes=trainer.accelerator.num_processes, steps=state.global_step, train_runtime_s=round(final.get("train_runtime", 0.0), 3),
                       steps_per_s=round(state.global_step / final["train_runtime"], 3) if final.get("train_runtime") else None,
                       train_loss=final.get("train_loss"), first_loss=losses[0] if losses else None,
                       last_loss=losses[-1] if losses else None,
                       log_history=[{k: v for k, v in h.items()} for h in state.log_history])  # fmt: skip
        return out


def save(trainer, cfg: TrainConfig, method: str, model: str, data: dict[str, Any], metrics: dict[str, Any],
         **extra: Any) -> str:  # fmt: skip
    """Save the trained policy (adapter or full) + tokenizer, optionally merged weights, then ``guard_bench.json``."""
    from guard_eval.modeling import load_model

    out = Path(cfg.output_dir)
    if trainer.is_fsdp_enabled:  # gather the shards into one HF checkpoint that guard-eval and the next stage load
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out))  # collective under FSDP/DeepSpeed: every rank calls it
    if not trainer.accelerator.is_main_process:
        return str(out)
    shutil.rmtree(out / "ref", ignore_errors=True)  # TRL's frozen reference adapter: a copy of the input adapter
    trainer.processing_class.save_pretrained(str(out))
    (out / "training_args.bin").unlink(missing_ok=True)
    config = cfg.to_dict()
    adapter = is_adapter(str(out))
    if cfg.merge and adapter:
        merged = load_model(str(out), device="cpu", dtype=cfg.dtype)
        merged.save_pretrained(out / "merged")
        trainer.processing_class.save_pretrained(out / "merged")
        write_metadata(out / "merged", method, model, config, data, metrics, adapter=False, merged_from=str(out), **extra)
    write_metadata(out, method, model, config, data, metrics, adapter=adapter, **extra)
    return str(out)
