"""One GEMM for each decoder layer's q/k/v projections and one for gate/up, in the fast decode loop.

At 64 rows a decode step is ~250 small kernels (docs/performance.md, "What limits it"); HF's Llama-family layers run
``q_proj``, ``k_proj`` and ``v_proj`` as three GEMMs on the same hidden states (k and v are tiny, so they cost launch
latency, not bandwidth) and ``gate_proj``/``up_proj`` as two. :func:`fuse_storage` moves each group's weights (and
biases) into one tensor and repoints every projection's weight to its row slice of it: no extra memory and unchanged
values, so ``generate``, training and ``save_pretrained`` (which clones disjoint views of one storage) still work.
:class:`~guard_eval.generation.fast_decode.StaticDecoder` does it when built, even with ``fused_projections=false``:
the weights then never move afterwards, which the CUDA graphs of every decoder sharing the model rely on.

Only while :func:`applied` (the decoder decoding), a group's first projection computes the whole group in one GEMM
and the others return their parts of it; a later member given another input than the first (a model calling them in
another order) computes its own, so the results stay right. Groups of equal widths (gate/up) run as one batched GEMM
whose parts come out contiguous (Liger's SwiGLU would copy strided slices); q/k/v are slices of one ``F.linear``,
except in a prefill (more than :data:`SEPARATE_QKV_FROM` tokens), where each runs its own.

``fused_projections`` (a backend option): ``None`` (auto) = on for a CUDA model with fusable layers; ``False`` = off;
``True`` = on (also on CPU), or an error saying why it cannot be.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from guard_eval.generation.fused_kernels import _base

GROUPS = (("self_attn", ("q_proj", "k_proj", "v_proj")), ("mlp", ("gate_proj", "up_proj")))
# q/k/v of more tokens than this (a prefill) run as their own GEMMs: one GEMM saves nothing at that size, and its
# strided q/k slices make Liger's rotary kernel copy them (5 of the 166 ms of a 256-row prefill on an H200).
SEPARATE_QKV_FROM = 4096


def _groups(model) -> Iterator[list[torch.nn.Linear]]:
    """Each decoder layer's q/k/v and gate/up projections that can share a GEMM (:func:`_fusable`)."""
    for layer in getattr(getattr(_base(model), "model", None), "layers", ()):
        for block, names in GROUPS:
            projs = [getattr(getattr(layer, block, None), name, None) for name in names]
            if _fusable(projs):
                yield projs


def _fusable(projs: list) -> bool:
    """Plain ``nn.Linear`` (not LoRA-wrapped or quantized) with plain tensor weights and no instance ``forward`` (an
    accelerate hook), of one dtype and device (not meta: offloaded), with biases on all or none."""
    if not all(type(p) is torch.nn.Linear and type(p.weight.data) is torch.Tensor and "forward" not in vars(p)
               for p in projs):  # fmt: skip
        return False
    kinds = {(p.weight.dtype, p.weight.device, p.bias is None) for p in projs}
    return len(kinds) == 1 and projs[0].weight.device.type != "meta"


def _joined(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """The tensor that ``tensors`` are consecutive row slices of (in order, in one storage), else ``None``."""
    first, offset, storage = tensors[0], tensors[0].storage_offset(), tensors[0].untyped_storage().data_ptr()
    for t in tensors:
        if not t.is_contiguous() or t.untyped_storage().data_ptr() != storage or t.storage_offset() != offset:
            return None
        offset += t.numel()
    return first.as_strided((sum(len(t) for t in tensors), *first.shape[1:]), first.stride())


def fuse_storage(model) -> int:
    """Put each fusable group's weights (and biases) into one tensor, the projections keeping row-slice views of it.

    Idempotent (fused groups are left alone); values are unchanged. Returns the number of fusable groups."""
    groups = list(_groups(model))
    with torch.inference_mode(False), torch.no_grad():  # plain tensors: the model may be trained afterwards
        for projs in groups:
            for params in ([p.weight for p in projs], [p.bias for p in projs]):
                if params[0] is None or _joined(params) is not None:
                    continue
                fused, start = torch.cat([p.data for p in params]), 0
                for p in params:
                    p.data, start = fused[start : start + len(p)], start + len(p)
    return len(groups)


class _Group:
    """The shared forward of one group: member 0 runs the fused GEMM and keeps its input and the output slices."""

    def __init__(self, projs: list[torch.nn.Linear]) -> None:
        self.projs, self.sizes = projs, [p.out_features for p in projs]
        self.weight = _joined([p.weight for p in projs])
        self.bias = _joined([p.bias for p in projs]) if projs[0].bias is not None else None
        self.joined = self.weight is not None and (self.bias is None) == (projs[0].bias is None)
        self.input: torch.Tensor | None = None
        self.outputs: tuple[torch.Tensor, ...] = ()

    def forward(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if index == 0 and self.bias is None and len(set(self.sizes)) == 1:  # equal widths: contiguous parts
            n, size = len(self.sizes), self.sizes[0]
            out = torch.matmul(x.reshape(-1, x.shape[-1]), self.weight.view(n, size, -1).transpose(1, 2))
            self.input, self.outputs = x, tuple(o.view(*x.shape[:-1], size) for o in out)
        elif index == 0 and x.numel() // x.shape[-1] > SEPARATE_QKV_FROM:  # each member computes its own
            self.input, self.outputs = None, ()
            return F.linear(x, self.projs[0].weight, self.projs[0].bias)
        elif index == 0:
            self.input, self.outputs = x, F.linear(x, self.weight, self.bias).split(self.sizes, dim=-1)
        elif x is not self.input:  # not the input the group was computed for: this projection alone
            return F.linear(x, self.projs[index].weight, self.projs[index].bias)
        return self.outputs[index]


@contextlib.contextmanager
def applied(model) -> Iterator[None]:
    """The fused forwards set on the projection instances of each group :func:`fuse_storage` joined (others run as
    they are) for the block; removed on exit, so the modules' own ``forward`` runs again."""
    groups = [group for group in map(_Group, _groups(model)) if group.joined]
    for group in groups:
        for index, proj in enumerate(group.projs):
            proj.forward = functools.partial(group.forward, index)
    try:
        yield
    finally:
        for group in groups:
            group.input, group.outputs = None, ()
            for proj in group.projs:
                vars(proj).pop("forward", None)


def resolve(model, device_type: str, requested: bool | None) -> tuple[bool, str]:
    """(fuse the projections?, why) for ``model`` on ``device_type`` given the ``fused_projections`` option.

    Raises ``ValueError`` when ``requested`` is True and they cannot be fused, naming the reason."""
    if requested is False:
        return False, "off (fused_projections=false)"
    groups = sum(1 for _ in _groups(model))
    if not groups:
        reason = "no decoder layer has plain nn.Linear q/k/v or gate/up projections (LoRA-wrapped or quantized?)"
    elif device_type != "cuda" and not requested:
        reason = f"on by default on CUDA only, the model is on {device_type} (fused_projections=true forces them)"
    else:
        return True, f"one GEMM for q/k/v and one for gate/up ({groups} groups)"
    if requested:
        raise ValueError(f"fused_projections=true: {reason}")
    return False, reason
