"""Fused RMSNorm / rotary / SwiGLU kernels from Liger (``pip install guard-bench[gpu]``) for the fast decode loop.

HF's Llama-family modules are written op by op, so half of a decode step is ~200 small element-wise kernels
(docs/performance.md, "What limits it"). Liger's Triton kernels fuse them without a compile step. They are applied
only while :class:`~guard_eval.generation.fast_decode.StaticDecoder` runs (its CUDA graphs keep them), and removed
afterwards, so ``model.generate`` and anyone else sharing the model see the original modules.

``fused_kernels`` (a backend option): ``None`` (auto) = on for a CUDA model when ``liger_kernel`` is installed and
supports the architecture, and the step is not ``torch.compile``'d (compile fuses these itself); ``False`` = off;
``True`` = on, or an error saying why it cannot be.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import warnings
from collections.abc import Iterator
from typing import Any

KERNELS = ("rms_norm", "rope", "swiglu")  # what is fused; the losses (cross entropy) are training-only


def _liger_apply_functions() -> dict[str, Any] | None:
    """Liger's ``model_type -> apply_liger_kernel_to_<type>`` table, or ``None`` when Liger is not installed.

    An installed Liger that fails to import (e.g. against another transformers) raises, naming the cause."""
    try:
        monkey_patch = importlib.import_module("liger_kernel.transformers.monkey_patch")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "liger_kernel":
            return None
        raise ImportError(f"liger-kernel is installed but does not import: {e}") from e
    return dict(monkey_patch.MODEL_TYPE_TO_APPLY_LIGER_FN)


def _base(model):
    """The transformers model under a PEFT wrapper (Liger patches the decoder layers by attribute name)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def resolve(model, device_type: str, requested: bool | None, compile: bool = False) -> tuple[bool, str]:
    """(use fused kernels?, why) for ``model`` on ``device_type`` given the ``fused_kernels`` option.

    Raises ``ValueError`` when ``requested`` is True and they cannot run, naming the reason.
    """
    if requested is False:
        return False, "off (fused_kernels=false)"
    model_type = _base(model).config.model_type
    try:
        table = _liger_apply_functions()
    except ImportError as e:
        if requested:
            raise ValueError(f"fused_kernels=true: {e}") from e
        warnings.warn(f"fused kernels off: {e}", stacklevel=3)
        return False, str(e)
    if table is None:
        reason = "liger-kernel is not installed (pip install 'guard-bench[gpu]')"
    elif model_type not in table:
        reason = f"liger-kernel has no kernels for model type {model_type!r}"
    elif device_type != "cuda":
        reason = f"fused kernels need a CUDA device, the model is on {device_type}"
    elif compile and requested is None:
        reason = "off: torch.compile fuses the same kernels (fused_kernels=true forces them)"
    else:
        return True, f"liger-kernel: {', '.join(KERNELS)}"
    if requested:
        raise ValueError(f"fused_kernels=true: {reason}")
    return False, reason


@contextlib.contextmanager
def applied(model) -> Iterator[None]:
    """Liger's RMSNorm, rotary and SwiGLU kernels patched into ``model`` (and its modeling module) for the block.

    Liger patches the instance's modules and replaces names in ``transformers.models.<type>.modeling_<type>``;
    both are restored on exit, so the patch never outlives the block.
    """
    base = _base(model)
    table = _liger_apply_functions()
    if table is None or base.config.model_type not in table:
        raise ValueError(f"liger-kernel cannot patch model type {base.config.model_type!r}")
    apply = table[base.config.model_type]
    wanted = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False,
              "fused_linear_cross_entropy": False, "model": base}  # fmt: skip
    accepted = inspect.signature(apply).parameters
    namespace = sys.modules[type(base).__module__]
    saved_globals = dict(vars(namespace))
    saved_attrs = [(m, dict(vars(m))) for m in base.modules()]
    saved_attrs.append((base, dict(vars(base))))
    try:
        apply(**{k: v for k, v in wanted.items() if k in accepted})
        yield
    finally:
        _restore(vars(namespace), saved_globals, lambda k: delattr(namespace, k), lambda k, v: setattr(namespace, k, v))
        for module, before in saved_attrs:
            _restore(vars(module), before, lambda k, m=module: m.__dict__.pop(k, None),
                     lambda k, v, m=module: m.__dict__.__setitem__(k, v))  # fmt: skip


def _restore(now: dict, before: dict, delete, put) -> None:
    for key in [k for k in now if k not in before]:
        delete(key)
    for key, value in before.items():
        if now.get(key) is not value:
            put(key, value)
