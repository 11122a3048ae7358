"""The fast loop's own forward of a decode step: the model's modules and weights, fewer kernels between them.

HF's decoder layer is written op by op; with Liger's kernels, the fused projections and the Triton decode attention
on, a decode step of a 16-layer 1B Llama still ran 278 kernels. With this forward the whole step runs 137
(docs/performance.md, "Round 7" and "Round 11"):

* each residual add is fused into the RMSNorm after it (Liger's ``fused_add_rms_norm`` when the fused kernels are
  on; otherwise the add and the layer's own norm), so a layer's output is carried as ``(update, residual)`` pairs;
* q/k/v come from one GEMM over the layer's fused weight (:mod:`~guard_eval.generation.fused_projections`), and the
  Triton decode attention (:func:`~guard_eval.generation.decode_attention.decode_attention` with a ``NewToken``)
  takes the heads of its output as they are: it applies the rotary embedding to the query and key, writes the key
  and value into the cache slot and attends, in one kernel (no copies of strided q/k slices, no separate rotary or
  cache-write kernels);
* the rotary embedding's cos/sin come from tables by position, computed once by the model's own rotary module
  (not its 9 small kernels every step); RoPE types whose tables depend on the sequence length ("dynamic",
  "longrope") run the module each step;
* the MLP is the layer's own module (with the fused gate/up and Liger's SwiGLU patched in).

Prefill still runs the model's own forward. Llama, Mistral, Qwen2 (biases) and Qwen3 (per-head q/k norms, applied
by the layer's own modules) are served. ``fused_layers`` (a backend option): ``None`` (auto) = on whenever the decode
attention is the Triton kernel and the model fits; ``False`` = off; ``True`` = on, or an error saying why not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from guard_eval.generation.fused_kernels import _base
from guard_eval.generation.fused_projections import _fusable, _Group


def unsupported_reason(model) -> str | None:
    """Why the own forward cannot run ``model``'s decode steps (``None`` when it can; the Triton decode attention it
    calls has its own head-size rule)."""
    if getattr(model.config, "partial_rotary_factor", 1.0) != 1.0:
        return "partial rotary embeddings"
    for layer in getattr(getattr(_base(model), "model", None), "layers", None) or [None]:
        attn = getattr(layer, "self_attn", None)
        projs = [getattr(attn, name, None) for name in ("q_proj", "k_proj", "v_proj")]
        if not _fusable(projs) or not _Group(projs).joined:
            return "the q/k/v projections are not plain nn.Linear layers with one fused weight (LoRA-wrapped?)"
    return None


def resolve(model, requested: bool | None, decode_attention: str, fused_kernels: bool) -> tuple[bool, str]:
    """(run the own forward?, why) given the ``fused_layers`` option, the resolved decode attention and whether
    Liger's kernels are on (they bring the fused add+RMSNorm).

    Raises ``ValueError`` when ``requested`` is True and it cannot run, naming the reason."""
    if requested is False:
        return False, "off (fused_layers=false)"
    reason = unsupported_reason(model)
    if reason is None and decode_attention != "triton":
        reason = f"needs the Triton decode attention (decode attention is {decode_attention})"
    if reason is None:
        norms = "residual adds fused into RMSNorm" if fused_kernels else "residual adds separate (no Liger)"
        return True, f"own layer forward: rotary, KV write and attention in one kernel, {norms}"
    if requested:
        raise ValueError(f"fused_layers=true: {reason}")
    return False, reason


def _add_norm_liger():
    """Liger's ``(x, residual) -> (norm(x + residual), x + residual)``, or ``None`` when it is not installed."""
    try:
        from liger_kernel.ops.fused_add_rms_norm import LigerFusedAddRMSNormFunction
    except ImportError:
        return None

    def add_norm(x, residual, norm):
        eps = getattr(norm, "variance_epsilon", None) or norm.eps
        return LigerFusedAddRMSNormFunction.apply(x, residual, norm.weight, eps, 0.0, "llama", False)

    return add_norm


def _add_norm_modules(x, residual, norm):
    summed = residual + x
    return norm(summed), summed


class DecodeLayers:
    """The decode-step forward of one model: ``logits (B, V)`` for ``tokens (B, 1)`` at ``positions (B, 1)``, each row
    attending to its new token (written into slot ``cache.position``, which ``valid`` must not mark yet) and to the
    cache slots ``valid (B, kv_len)`` marks."""

    def __init__(self, model, fused_add_norm: bool) -> None:
        base = _base(model)
        self.inner, self.lm_head = base.model, base.lm_head
        self.layers = list(self.inner.layers[: model.config.num_hidden_layers])
        self.add_norm = (_add_norm_liger() if fused_add_norm else None) or _add_norm_modules
        self.qkv = [_Group([layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj])
                    for layer in self.layers]  # fmt: skip
        rope = getattr(self.inner.rotary_emb, "rope_type", "default")
        self.rope_by_step = "dynamic" in rope or rope == "longrope"  # tables that depend on the sequence length
        self._tables: torch.Tensor | None = None  # (2, positions, D): cos and sin by position

    def rotary(self, h: torch.Tensor, positions: torch.Tensor, cache) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's rotary ``cos``/``sin (B, D)`` at ``positions (B, 1)``: rows of tables the model's own rotary
        module computed once for the cache's positions (one gather a step, not the module's 9 kernels)."""
        rows = positions.shape[0]
        if self.rope_by_step:
            cos, sin = self.inner.rotary_emb(h, position_ids=positions)
            return cos.view(rows, -1), sin.view(rows, -1)
        slots = cache.length
        if self._tables is None or self._tables.shape[1] < slots or self._tables.dtype != h.dtype:
            at = torch.arange(slots, device=h.device)[None]
            self._tables = torch.cat(self.inner.rotary_emb(h, position_ids=at))  # (built before a graph is captured)
        index = positions.view(-1)
        if cache.ring:  # a ring's idle rows keep counting past every position
            index = index.clamp(max=self._tables.shape[1] - 1)
        cos, sin = self._tables.index_select(1, index)
        return cos, sin

    def __call__(self, tokens, positions, valid, cache) -> torch.Tensor:
        from guard_eval.generation.decode_attention import NewToken, decode_attention

        rows = tokens.shape[0]
        h = self.inner.embed_tokens(tokens)
        cos, sin = self.rotary(h, positions, cache)
        h, residual = h.view(rows, -1), None
        for layer, qkv in zip(self.layers, self.qkv):
            attn = layer.self_attn
            if residual is None:
                x, residual = layer.input_layernorm(h), h
            else:
                x, residual = self.add_norm(h, residual, layer.input_layernorm)
            q, k, v = F.linear(x, qkv.weight, qkv.bias).split(qkv.sizes, dim=-1)
            q, k, v = (t.view(rows, -1, attn.head_dim) for t in (q, k, v))
            if hasattr(attn, "q_norm"):  # Qwen3: RMSNorm over each head before the rotation
                q, k = attn.q_norm(q), attn.k_norm(k)
            keys, values = cache.keys[attn.layer_idx], cache.values[attn.layer_idx]
            new = NewToken(k, v, cos, sin, cache.position)
            out = decode_attention(q.unsqueeze(2), keys, values, valid, attn.scaling, skip_empty=cache.ring, new=new)
            h = attn.o_proj(out.view(rows, -1))
            x, residual = self.add_norm(h, residual, layer.post_attention_layernorm)
            h = layer.mlp(x)
        h, _ = self.add_norm(h, residual, self.inner.norm)
        return self.lm_head(h)
