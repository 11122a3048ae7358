"""A Triton decode-attention kernel that reads only the cache slots a row attends to.

The fast loop's cache is ``(rows, kv_heads, length, head_dim)`` with prompts left-padded and every step attending to
the first ``kv_len`` slots (a multiple of the loop's bucket). SDPA reads all ``kv_len`` slots of every row, the
padding and the not-yet-written tail of the bucket included, and turns the boolean mask into a bias. This kernel
reads the mask (one byte a slot) and loads keys and values under it (masked slots load nothing), so a step reads each
row's real keys and values once. It has no per-block "anything attended?" branch: that kept Triton from pipelining
the loads and cost 15-18% at 256 rows (benchmarks/results/round9-h200/):

* grouped-query attention: one program serves all query heads of one key/value head (they are the rows of one
  ``tl.dot``), so each key and value is read once for the group;
* split-KV ("flash decoding"): a row's slots are cut into ``splits`` ranges, each reduced by its own program, and a
  second kernel merges the partial softmaxes, so a small batch still fills the GPU;
* the kernel reads the mask and ``kv_len`` bounds from device memory, so it lives inside the loop's CUDA graphs.

Accumulation is float32; float32 inputs use IEEE (not TF32) products, so a float32 model decodes the same tokens as
``generate``. Runs under ``TRITON_INTERPRET=1`` on CPU (the tests do).
"""

from __future__ import annotations

import importlib.util
import os
from typing import NamedTuple

import torch


def resolve(config, device_type: str, requested: str | None, compile: bool = False) -> tuple[str, str]:
    """(``"triton"`` or ``"sdpa"``, why) for a model ``config`` on ``device_type`` given the ``decode_attention`` option.

    ``None`` (auto) = this kernel on CUDA when Triton is installed, the shape fits and the step is not
    ``torch.compile``'d (measured only uncompiled), else SDPA; ``"triton"`` raises ``ValueError`` naming the reason
    when it cannot run (on CPU it runs under ``TRITON_INTERPRET=1`` only: tests).
    """
    if requested not in (None, "triton", "sdpa"):
        raise ValueError(f"decode_attention must be 'triton' or 'sdpa', got {requested!r}")
    if requested == "sdpa":
        return "sdpa", "sdpa (decode_attention=sdpa)"
    if compile and requested is None:
        return "sdpa", "sdpa (compile=true keeps SDPA; decode_attention=triton forces the kernel)"
    from guard_eval.generation.fast_decode import kv_heads_and_dim

    kv_heads, head_dim = kv_heads_and_dim(config)
    reason = unsupported_reason(head_dim, config.num_attention_heads // kv_heads)
    if reason is None and importlib.util.find_spec("triton") is None:
        reason = "triton is not installed"
    if reason is None and device_type != "cuda":
        if requested is None:
            return "sdpa", "sdpa (auto picks Triton on CUDA only)"
        if os.environ.get("TRITON_INTERPRET") != "1":
            reason = f"the Triton kernel needs a CUDA device, the model is on {device_type}"
    if reason is None:
        return "triton", "triton: reads only attended cache blocks"
    if requested == "triton":
        raise ValueError(f"decode_attention=triton: {reason}")
    return "sdpa", f"sdpa ({reason})"


def unsupported_reason(head_dim: int, groups: int) -> str | None:
    """Why the kernel cannot serve this attention shape (``None`` when it can)."""
    if head_dim & (head_dim - 1) or not 16 <= head_dim <= 256:
        return f"head_dim {head_dim} is not a power of two in [16, 256]"
    if groups > 64:
        return f"{groups} query heads per key/value head (at most 64)"
    return None


def _kernels():
    """The compiled (or, under ``TRITON_INTERPRET=1``, interpreted) kernels; imported on first use."""
    from guard_eval.generation import _decode_attention_kernels as kernels

    return kernels.partial_attention, kernels.merge_splits


def choose_splits(rows: int, kv_heads: int, kv_len: int, block: int = 128, programs: int = 256) -> int:
    """How many ranges to cut a row's slots into: enough programs to fill the GPU, at least a block per range.

    Measured on an H200 (benchmarks/decode_attention_bench.py): one range is fastest from 64 rows x 8 KV heads up;
    splitting pays only when rows x KV heads leaves SMs idle."""
    wanted = -(-programs // (rows * kv_heads))
    return max(1, min(wanted, -(-kv_len // block), 16))


class NewToken(NamedTuple):
    """A decode step's own token for :func:`decode_attention` to rotate, cache and attend to, in the same kernel.

    ``key``/``value (B, KVH, D)`` come straight from the q/k/v GEMM (strided head views are fine), ``cos``/``sin``
    ``(B, D)`` are each row's rotary embedding, ``slot`` (a 1-element device tensor) is the cache slot every row
    writes it into."""

    key: torch.Tensor
    value: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    slot: torch.Tensor


def decode_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attend: torch.Tensor, scale: float,
    splits: int | None = None, block: int = 128, num_warps: int | None = None, num_stages: int = 2,
    skip_empty: bool = False, new: NewToken | None = None,
) -> torch.Tensor:  # fmt: skip
    """One decode step's attention: ``query (B, H, 1, D)`` over the cache ``key/value (B, KVH, T, D)``.

    ``attend (B, kv_len)`` (bool or uint8) marks the slots each row attends to; slots past ``kv_len`` are never
    read. ``skip_empty``: test each block for an attended slot first and skip it if none is; worth it when most
    blocks are not attended (a continuous batch's ring), slower otherwise. Returns ``(B, 1, H, D)`` in the query's
    dtype, as HF attention functions do.

    ``new``: the step's token (:class:`NewToken`) is not in the cache yet and ``query`` is not rotated; the kernel
    rotates the query and key, writes the key and value into slot ``new.slot`` and attends to the marked slots (which
    must not include that one) and to the token. One kernel instead of a rotary, a cache write and attention.
    """
    partial_attention, merge_splits = _kernels()
    if num_warps is None:  # measured on an H200 (benchmarks/results/round11-h200/)
        num_warps = 4 if new is not None else 2
    batch, heads, _, dim = query.shape
    kv_heads, kv_len = key.shape[1], attend.shape[-1]
    groups = heads // kv_heads
    reason = unsupported_reason(dim, groups)
    if reason:
        raise ValueError(f"decode_attention: {reason}")
    q = query.reshape(batch, heads, dim)
    if q.stride(-1) != 1:
        q = q.contiguous()
    attend = attend.reshape(batch, kv_len)
    attend = attend.view(torch.uint8) if attend.dtype == torch.bool else attend
    splits = splits or choose_splits(batch, kv_heads, kv_len, block)
    split_len = -(-(-(-kv_len // splits)) // block) * block  # a multiple of the block
    block_g = max(16, 1 << (groups - 1).bit_length())
    out = torch.empty(batch, heads, dim, dtype=query.dtype, device=query.device)
    if splits > 1:
        acc = torch.empty(batch, kv_heads, splits, block_g, dim, dtype=torch.float32, device=query.device)
        stats = torch.empty(batch, kv_heads, splits, block_g, 2, dtype=torch.float32, device=query.device)
    else:
        acc = stats = out  # unused
    precision = "ieee" if query.dtype == torch.float32 else "tf32"
    if new is None:
        new_args = (q, q, q, q, q, 0, 0, 0, 0, 0)  # unused
    else:
        k, v, cos, sin = new.key, new.value, new.cos, new.sin
        if any(t.stride(-1) != 1 for t in new[:4]) or cos.stride(0) != sin.stride(0):
            raise ValueError("decode_attention: new.key/value/cos/sin need a contiguous last dimension, and cos and "
                             "sin the same row stride")  # fmt: skip
        new_args = (k, v, cos, sin, new.slot, k.stride(0), k.stride(1), v.stride(0), v.stride(1), cos.stride(0))
    partial_attention[(batch, kv_heads, splits)](
        q, key, value, attend, out, acc, stats,
        q.stride(0), q.stride(1), key.stride(0), key.stride(1), key.stride(2),
        value.stride(0), value.stride(1), value.stride(2), attend.stride(0),
        kv_len, split_len, scale, *new_args,
        GROUPS=groups, BLOCK_G=block_g, BLOCK_N=block, HEAD_DIM=dim, SPLITS=splits, PRECISION=precision,
        SKIP_EMPTY=skip_empty, NEW=new is not None,
        num_warps=num_warps, num_stages=num_stages,
    )  # fmt: skip
    if splits > 1:
        merge_splits[(batch, kv_heads)](acc, stats, out, GROUPS=groups, BLOCK_G=block_g, HEAD_DIM=dim, SPLITS=splits)
    return out.unsqueeze(1)
