"""Prefill without padding: a chunk's prompts packed back to back into one sequence, attended with flash varlen.

The padded prefill runs a chunk as a ``(rows, width)`` batch: every GEMM computes the left padding, the
``(rows, 1, w, w)`` mask keeps SDPA off flash attention, and the key/value heads are repeated for each query head
(SDPA's grouped-query path with a mask fell back to the math kernel on long prompts). Packed, a chunk is one row of
its real tokens, each prompt's positions starting at 0. ``torch.nn.attention.varlen.varlen_attn`` (flash attention
over cumulative lengths, grouped-query heads native) attends each token causally within its own prompt, and the
cache writes each token into its prompt's row and the slot it has in the padded layout, so decoding is unchanged.

``packed_prefill`` (a backend option): ``None`` (auto) = on for CUDA models in bf16/fp16 when this torch has varlen
attention and the head size is at most 256; ``False`` = off; ``True`` = on, and where flash varlen cannot run
(a CPU, float32) each prompt goes through SDPA: the reference the tests check packing with.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FLASH_DTYPES = (torch.bfloat16, torch.float16)
MAX_HEAD_DIM = 256


@functools.cache
def _varlen_attn():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def unsupported_reason(config, device_type: str, dtype: torch.dtype) -> str | None:
    """Why flash varlen cannot prefill this model here (``None`` when it can)."""
    if device_type != "cuda":
        return f"flash varlen attention needs CUDA (device is {device_type})"
    if dtype not in FLASH_DTYPES:
        return f"flash varlen attention needs bf16 or fp16 (model is {dtype})"
    if _varlen_attn() is None:
        return f"torch {torch.__version__} has no torch.nn.attention.varlen"
    # imported here: fast_decode imports this module
    from guard_eval.generation.fast_decode import kv_heads_and_dim

    head_dim = kv_heads_and_dim(config)[1]
    if head_dim > MAX_HEAD_DIM:
        return f"head size {head_dim} > {MAX_HEAD_DIM}"
    return None


def resolve(config, device_type: str, dtype: torch.dtype, requested: bool | None) -> tuple[bool, str]:
    """(pack the prefill?, why). Asked for where flash varlen cannot run, each prompt goes through SDPA (slow; the
    reference the tests check packing with)."""
    if requested is False:
        return False, "off (packed_prefill=false)"
    reason = unsupported_reason(config, device_type, dtype)
    if reason is None:
        return True, "prompts packed without padding, flash varlen attention"
    if requested:
        return True, f"prompts packed without padding, SDPA per prompt ({reason})"
    return False, reason


@dataclass
class Packed:
    """Left-padded prompts as one row of their real tokens."""

    ids: torch.Tensor  # (1, T)
    positions: torch.Tensor  # (1, T): each prompt's own 0..n-1
    prompt: torch.Tensor  # (T,) the chunk-relative prompt of each token
    slots: torch.Tensor  # (T,) each token's cache slot: its column in the padded layout
    bounds: torch.Tensor  # (prompts + 1,) int32 cumulative lengths
    longest: int

    def to(self, move) -> Packed:
        """The same tensors through ``move`` (e.g. to the device)."""
        tensors = {name: move(getattr(self, name)) for name in ("ids", "positions", "prompt", "slots", "bounds")}
        return Packed(**tensors, longest=self.longest)

    @property
    def last(self) -> torch.Tensor:
        """Index of each prompt's last token (where its next-token logits are)."""
        return self.bounds[1:].long() - 1

    def attention_kwargs(self) -> dict:
        """What the model's forward hands each attention call (transformers' names for packed sequences)."""
        return {"cu_seq_lens_q": self.bounds, "cu_seq_lens_k": self.bounds,
                "max_length_q": self.longest, "max_length_k": self.longest}  # fmt: skip


def pack(input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> Packed:
    """Pack left-padded ``input_ids (n, w)`` whose non-padding tokens ``mask (n, w)`` marks (at least one a row)."""
    mask = mask.bool()
    lengths = mask.sum(1)
    columns = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return Packed(
        ids=input_ids[mask][None],
        positions=positions[mask][None],
        prompt=torch.arange(len(lengths), device=mask.device).repeat_interleave(lengths),
        slots=columns[mask],
        bounds=F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32),
        longest=int(lengths.max()),
    )


def attention(query, key, value, bounds: torch.Tensor, longest: int, scale: float | None) -> torch.Tensor:
    """``(1, H, T, D)`` queries and ``(1, KVH, T, D)`` keys/values of packed prompts -> ``(1, T, H, D)``: each token
    attends causally to its own prompt's tokens."""
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (T, heads, D)
    flash = q.is_cuda and q.dtype in FLASH_DTYPES and q.shape[-1] <= MAX_HEAD_DIM
    varlen_attn = _varlen_attn() if flash else None
    if varlen_attn is not None:
        gqa = {"enable_gqa": True} if k.shape[1] != q.shape[1] and _has_gqa_flag(varlen_attn) else {}
        out = varlen_attn(q, k, v, bounds, bounds, longest, longest, scale=scale, window_size=(-1, 0), **gqa)
    else:
        groups = q.shape[1] // k.shape[1]
        edges = bounds.tolist()
        out = torch.cat([
            F.scaled_dot_product_attention(
                q[a:b].transpose(0, 1), k[a:b].transpose(0, 1).repeat_interleave(groups, 0),
                v[a:b].transpose(0, 1).repeat_interleave(groups, 0), is_causal=True, scale=scale,
            ).transpose(0, 1)
            for a, b in itertools.pairwise(edges)
        ])  # fmt: skip
    return out.unsqueeze(0)


def store(keys, values, key_cache, value_cache, rows: torch.Tensor, slots: torch.Tensor, copies: int) -> None:
    """Packed ``keys``/``values (1, KVH, T, D)`` into caches ``(B, KVH, L, D)``: token ``t`` into rows
    ``rows[t] .. + copies``, slot ``slots[t]``, in one Triton kernel."""
    import triton

    from guard_eval.generation._decode_attention_kernels import packed_store

    _, kv_heads, tokens, dim = keys.shape
    packed_store[(tokens,)](
        keys, values, key_cache, value_cache, rows, slots, copies, keys.stride(2), keys.stride(1),
        values.stride(2), values.stride(1), key_cache.stride(0), key_cache.stride(1), key_cache.stride(2),
        KV_HEADS=kv_heads, BLOCK_H=triton.next_power_of_2(kv_heads), DIM=dim, BLOCK_D=triton.next_power_of_2(dim),
    )  # fmt: skip


@functools.cache
def _has_gqa_flag(fn) -> bool:
    """Newer torch's varlen_attn asks for ``enable_gqa``; 2.11's takes fewer key/value heads as they are (asked once,
    not at every layer's attention)."""
    import inspect

    return "enable_gqa" in inspect.signature(fn).parameters
