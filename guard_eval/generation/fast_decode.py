"""A static-cache decode loop around an HF causal LM: the same greedy tokens as ``generate``, several times faster.

Why not ``model.generate``: at the batch sizes guard evaluation uses, a decode step of a 1B model should take about
as long as reading the weights once (~1 ms on an H100), but ``generate`` spends most of each step in Python and
kernel launches (it reaches 1-19% of that bound). This loop keeps the model's own modules and weights and changes
only what is around them:

* a preallocated KV cache that the model writes through ``cache.update(key, value, layer_idx)`` (the call every HF
  attention layer makes), so every decode step has the same shapes;
* on CUDA, each decode step is captured once as a CUDA graph per attended-length bucket and replayed: no Python, no
  launch gaps; attention reads only the bucket (a multiple of ``bucket`` slots), not the whole cache;
* grouped-query attention folds each key/value head's query heads into one query block, so decode reads every
  cached key and value once instead of copying them per query head (``repeat_kv``);
* on CUDA, decode steps run the loop's own layer forward with fewer kernels
  (:mod:`~guard_eval.generation.decode_layers`) and a decode attention that reads only attended cache blocks
  (:mod:`~guard_eval.generation.decode_attention`);
* with ``num_samples = k`` a prompt is prefilled once and its cache rows written k times ("prefix sharing");
* the host checks for "every row finished" only every ``check_every`` steps, so the GPU never waits for Python;
* :meth:`StaticDecoder.stream_continuous` batches continuously: the cache is a ring, and a row whose answer has
  ended is given the next prompt instead of idling until the longest answer of its batch ends; finished prompts are
  yielded as they end.

Greedy decoding picks ``argmax`` of the same logits as ``generate``; sampling uses the Gumbel-max trick (exactly
softmax sampling with temperature and top-p, but another random stream than ``generate``'s, so sampled texts differ).
Models with sliding-window or other non-full attention layers are not supported (:func:`unsupported_reason`);
:class:`~guard_eval.generation.hf.HFBackend` falls back to ``generate`` for them.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from guard_eval.generation import packed_prefill as packed

ATTENTION_NAMES = {"sdpa": "guard_bench_static", "triton": "guard_bench_static_triton"}
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def unsupported_reason(model) -> str | None:
    """Why ``model`` cannot run in this loop (``None`` when it can): an unknown architecture or windowed attention."""
    config = model.config
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {config.model_type!r} is not one of {sorted(SUPPORTED_MODEL_TYPES)}"
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    windowed = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    if layer_types != {"full_attention"} or (windowed and config.model_type == "mistral"):
        return "sliding-window attention"
    return None


def _static_cache_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs: Any):
    """Attention over the first ``attention_mask.shape[-1]`` cache slots; the mask is bool, True = attend.

    HF calls this with ``query (B, H, q, D)`` and the cache's ``key/value (B, KVH, T, D)`` and expects ``(B, q, H, D)``.
    """
    if kwargs.get("cu_seq_lens_q") is not None:  # a packed prefill (:mod:`~guard_eval.generation.packed_prefill`)
        return packed.attention(query, key, value, kwargs["cu_seq_lens_q"], kwargs["max_length_q"], scaling), None
    kv_len = attention_mask.shape[-1]
    key, value = key[:, :, :kv_len], value[:, :, :kv_len]
    batch, heads, q_len, dim = query.shape
    groups = heads // key.shape[1]
    if q_len == 1 and groups > 1:  # decode: the query heads sharing a KV head become that head's query rows
        folded = query.reshape(batch, key.shape[1], groups, dim)
        out = F.scaled_dot_product_attention(folded, key, value, attn_mask=attention_mask, scale=scaling)
        out = out.reshape(batch, heads, 1, dim)
    else:  # not SDPA's enable_gqa: with a mask on long prompts it fell back to the slow math kernel
        if groups > 1:
            key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def _triton_static_cache_attention(module, query, key, value, attention_mask, scaling=None, **kwargs: Any):
    """Decode steps through :func:`~guard_eval.generation.decode_attention.decode_attention` (only the attended
    cache blocks are read); prefill as :func:`_static_cache_attention`."""
    if query.shape[2] != 1:
        return _static_cache_attention(module, query, key, value, attention_mask, scaling, **kwargs)
    from guard_eval.generation.decode_attention import decode_attention

    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    return decode_attention(query, key, value, attention_mask[:, 0, 0, :], scale), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAMES["sdpa"], _static_cache_attention)
    AttentionInterface.register(ATTENTION_NAMES["triton"], _triton_static_cache_attention)


def kv_heads_and_dim(config) -> tuple[int, int]:
    """(key/value heads, head size) of a model config: the shape of one cached token of one layer."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return kv_heads, getattr(config, "head_dim", None) or config.hidden_size // heads


class StaticKVCache:
    """Per-layer key/value buffers ``(rows, kv_heads, length, head_dim)`` that HF attention layers write into.

    Decode writes every row at slot :attr:`position` (a device tensor, so a replayed CUDA graph advances it);
    while :meth:`prefilling`, a chunk of prompts is written from slot ``offset`` into ``expand`` consecutive rows each.
    """

    def __init__(self, config, rows: int, length: int, dtype: torch.dtype, device: torch.device,
                 position: torch.Tensor | None = None) -> None:  # fmt: skip
        kv_heads, head_dim = kv_heads_and_dim(config)
        shape = (rows, kv_heads, length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.rows, self.length = rows, length
        self.position = torch.zeros(1, dtype=torch.long, device=device) if position is None else position
        self._prefill: tuple[int, int, int] | None = None  # (first row, copies per prompt, first slot)
        self._scatter: tuple[torch.Tensor, torch.Tensor] | None = None  # (rows, slots) indices
        self._packed: tuple[torch.Tensor, torch.Tensor, int, bool] | None = None  # (row, slot) a token, copies, triton
        self.ring = False  # decoding as a ring (continuous batching): most slots belong to other rows' answers

    @contextlib.contextmanager
    def prefilling(self, first_row: int, expand: int, offset: int = 0) -> Iterator[None]:
        self._prefill = (first_row, expand, offset)
        try:
            yield
        finally:
            self._prefill = None

    @contextlib.contextmanager
    def scattering(self, rows: torch.Tensor, slots: torch.Tensor) -> Iterator[None]:
        """While prefilling prompt ``i`` of a chunk into row ``rows[i]``, its token ``j`` into slot ``slots[j]``
        (continuous batching: any rows, slots that may wrap around the end of the cache)."""
        self._scatter = (rows, slots)
        try:
            yield
        finally:
            self._scatter = None

    @contextlib.contextmanager
    def packing(self, rows: torch.Tensor, slots: torch.Tensor, expand: int = 1, triton: bool = False) -> Iterator[None]:
        """While prefilling packed prompts ``(1, KVH, T, D)``: token ``t`` goes into rows ``rows[t] .. + expand``,
        slot ``slots[t]`` (``triton``: in one kernel for keys and values, not 2 x ``expand`` ``index_put_``)."""
        self._packed = (rows, slots, expand, triton)
        try:
            yield
        finally:
            self._packed = None

    def update(self, key_states, value_states, layer_idx: int, *args: Any, **kwargs: Any):
        if self._packed is not None:
            rows, slots, expand, triton = self._packed
            if triton:
                keys, values = self.keys[layer_idx], self.values[layer_idx]
                packed.store(key_states, value_states, keys, values, rows, slots, expand)
                return key_states, value_states
            for cache, states in ((self.keys, key_states), (self.values, value_states)):
                for copy in range(expand):
                    cache[layer_idx].transpose(1, 2).index_put_((rows + copy, slots), states[0].transpose(0, 1))
            return key_states, value_states
        if self._scatter is not None:
            rows, slots = self._scatter
            for cache, states in ((self.keys, key_states), (self.values, value_states)):
                cache[layer_idx].transpose(1, 2).index_put_((rows[:, None], slots[None, :]), states.transpose(1, 2))
            return key_states, value_states
        if self._prefill is not None:
            first, expand, offset = self._prefill
            rows = slice(first, first + key_states.shape[0] * expand)
            slots = slice(offset, offset + key_states.shape[2])
            for cache, states in ((self.keys, key_states), (self.values, value_states)):
                cache[layer_idx][rows, :, slots] = states.repeat_interleave(expand, dim=0) if expand > 1 else states
            return key_states, value_states
        self.keys[layer_idx].index_copy_(2, self.position, key_states)
        self.values[layer_idx].index_copy_(2, self.position, value_states)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:  # only asked when position_ids are missing; they never are
        return int(self.position.item())


def prompt_attention(mask: torch.Tensor) -> torch.Tensor:
    """The prefill's ``(B, 1, w, w)`` bool attention mask of left-padded prompts ``mask (B, w)``: causal; padding keys
    are hidden, and a padding query sees itself so that its softmax has something to normalise."""
    width = mask.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=mask.device).tril_()
    return ((causal & mask[:, None, :]) | torch.eye(width, dtype=torch.bool, device=mask.device)).unsqueeze(1)


def argmax_parts(x: torch.Tensor, block: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The maxima ``(rows, splits)`` of each ``block`` columns of a ``(rows, n)`` tensor, as float32, and the first
    column holding each, in one Triton kernel: what :func:`argmax` and the loop's :meth:`StaticDecoder._finish_step`
    reduce."""
    import triton

    from guard_eval.generation._decode_attention_kernels import argmax_partial

    x = x.contiguous()
    rows, n = x.shape
    block = min(block, triton.next_power_of_2(n))
    splits = triton.cdiv(n, block)
    values = torch.empty(rows, splits, dtype=torch.float32, device=x.device)
    indices = torch.empty(rows, splits, dtype=torch.long, device=x.device)
    argmax_partial[(rows, splits)](x, values, indices, n, x.stride(0), splits, BLOCK=block)
    return values, indices


def argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(-1)`` of a ``(rows, n)`` tensor (the first index on ties) in Triton: blocks of columns in parallel,
    then the best of their maxima. ``torch.argmax`` over a 128k vocabulary reads the logits at 1.3 TB/s (52 us of a
    2.2 ms step at 256 rows on an H200)."""
    values, indices = argmax_parts(x)
    return indices.gather(1, values.argmax(1, keepdim=True)).squeeze(1)


def scores(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """What the next token is the ``argmax`` of: the logits (greedy, ``temperature <= 0``), or the logits with
    temperature, nucleus ``top_p`` and Gumbel noise (a softmax sample by the Gumbel-max trick).

    Gumbel-max needs no ``multinomial`` (whose CUDA kernel syncs with the host), so it can live in a CUDA graph.
    """
    if temperature <= 0:
        return logits
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # tokens entirely past the nucleus; the top token always stays
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    noise = torch.empty_like(logits).exponential_()
    return logits - noise.log()


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float, triton: bool = False) -> torch.Tensor:
    """Greedy ``argmax``, or a softmax sample (temperature, nucleus ``top_p``) by the Gumbel-max trick (:func:`scores`);
    ``triton``: through :func:`argmax`."""
    x = scores(logits, temperature, top_p)
    return argmax(x) if triton else x.argmax(-1)


class HostCopy:
    """A device tensor on its way to pinned host memory: :meth:`result` waits for that copy only (the device may have
    queued more work since). A batch's new ids, or the "every row finished?" flag, without a synchronising copy."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self._event = None
        if tensor.is_cuda:
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(tensor, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = tensor.clone()

    def result(self) -> torch.Tensor:
        if self._event is not None:
            self._event.synchronize()
        return self._host


@dataclass
class _Session:
    """Device state of one batch shape; its CUDA graphs stay valid while the buffers do, so it outlives a batch."""

    cache: StaticKVCache
    tokens: torch.Tensor  # (rows, 1): the token fed to the next step
    positions: torch.Tensor  # (rows, 1): its rotary position
    valid: torch.Tensor  # (rows, length) bool: the slots written so far (non-padding prompt slots, decoded tokens')
    finished: torch.Tensor  # (rows,) bool
    out: torch.Tensor  # (rows, max_new) generated ids
    counters: torch.Tensor  # (2,): ``step`` and ``cache.position``, advanced by one add a step
    step: torch.Tensor  # (1,) the column of ``out`` the next step writes
    eos: torch.Tensor
    pad: torch.Tensor
    sampling: tuple[float, float, bool] = (0.0, 1.0, False)  # (temperature, top_p, ignore_eos) the graphs hold
    graphs: dict[tuple[int, bool], Any] = field(default_factory=dict)  # (attended length, ring) -> CUDAGraph
    pool: Any = None


class StaticDecoder:
    """Batched decoding of a loaded HF causal LM with a static cache (and CUDA graphs on GPU).

    :param eos_token_ids: a row stops at the first of these (the model's ``generation_config.eos_token_id``).
    :param cuda_graphs: capture decode steps as CUDA graphs (on CUDA only; ``False`` turns them off).
    :param bucket: attention reads the cache in multiples of this many slots; one graph per multiple.
    :param prefill_tokens: prompt tokens per prefill forward (rows are chunked to stay under it).
    :param compile: ``torch.compile`` the decode forward (fuses the norms, rotary and activation kernels that
        dominate a step at small batch; costs a compilation of about a minute on first use).
    :param fused_kernels: Liger's fused RMSNorm/rotary/SwiGLU kernels while decoding (None: on for CUDA when
        ``liger_kernel`` is installed and the step is not compiled; see :mod:`~guard_eval.generation.fused_kernels`).
    :param fused_projections: one GEMM for each layer's q/k/v and one for gate/up while decoding (None: on for CUDA
        when the layers are plain ``nn.Linear``; see :mod:`~guard_eval.generation.fused_projections`).
    :param decode_attention: ``"triton"`` (a kernel that reads only each row's attended cache blocks), ``"sdpa"``, or
        None: Triton on CUDA when installed (see :mod:`~guard_eval.generation.decode_attention`).
    :param refill_at: continuous batching (:meth:`stream_continuous`) refills rows once this fraction of them is
        done (a refill is one prefill forward: fewer, larger ones cost less than one every check).
    :param fused_layers: decode steps through the loop's own layer forward (residual adds fused into the norms,
        rotary and cache writes in one kernel; None: on whenever the decode attention is Triton and the model fits;
        see :mod:`~guard_eval.generation.decode_layers`).
    :param packed_prefill: prefill a chunk's prompts packed back to back without padding, attended with flash varlen
        (None: on for CUDA models in bf16/fp16 when torch has it; see :mod:`~guard_eval.generation.packed_prefill`).

    ``reasons`` maps each of these options to what it resolved to, and why.
    """

    def __init__(
        self,
        model,
        *,
        pad_token_id: int,
        eos_token_ids: Sequence[int],
        cuda_graphs: bool | None = None,
        bucket: int = 128,
        prefill_tokens: int = 32768,
        check_every: int = 16,
        compile: bool = False,
        fused_kernels: bool | None = None,
        fused_projections: bool | None = None,
        decode_attention: str | None = None,
        fused_layers: bool | None = None,
        refill_at: float = 0.125,
        packed_prefill: bool | None = None,
    ) -> None:
        from guard_eval.generation import decode_attention as attention
        from guard_eval.generation import decode_layers as layers
        from guard_eval.generation import fused_kernels as fused
        from guard_eval.generation import fused_projections as projections

        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"StaticDecoder cannot run this model: {reason}")
        _register_attention()
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.pad_token_id = pad_token_id
        self.eos_token_ids = list(eos_token_ids)
        self.cuda_graphs = self.device.type == "cuda" and cuda_graphs is not False
        projections.fuse_storage(model)  # even when off: weights moved later would break other decoders' graphs
        self.reasons: dict[str, str] = {}  # option -> what it resolved to, and why
        self.fused_kernels, self.reasons["fused_kernels"] = fused.resolve(
            model, self.device.type, fused_kernels, compile
        )
        self.fused_projections, self.reasons["fused_projections"] = projections.resolve(
            model, self.device.type, fused_projections
        )
        self.decode_attention, self.reasons["decode_attention"] = attention.resolve(
            model.config, self.device.type, decode_attention, compile
        )
        self.fused_layers, self.reasons["fused_layers"] = layers.resolve(
            model, fused_layers, self.decode_attention, self.fused_kernels
        )
        # The Triton argmax and packed cache write run wherever the Triton decode attention does
        self.kernels = self.decode_attention == "triton"
        self.packed_prefill, self.reasons["packed_prefill"] = packed.resolve(
            model.config, self.device.type, self.dtype, packed_prefill
        )
        wanted = ((fused, self.fused_kernels), (projections, self.fused_projections))
        self._fused = [module.applied for module, on in wanted if on]
        self.bucket, self.prefill_tokens, self.check_every = bucket, prefill_tokens, check_every
        self.refill_at = refill_at
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x
        self._session: _Session | None = None
        step = layers.DecodeLayers(model, self.fused_kernels) if self.fused_layers else self._hf_step
        # dynamic=True: one compilation serves every batch size and attended length
        self._decode_logits = torch.compile(step, dynamic=True) if compile else step

    def cache_token_budget(self, fraction: float = 0.5) -> int | None:
        """KV-cache slots (one token of one row) that fit in ``fraction`` of the device memory free now; ``None`` on
        a CPU. A batch whose cache would pass it OOMs: 512 rows of 5,000-token prompts need 107 GB for a 1B Llama."""
        if self.device.type != "cuda":
            return None
        kv_heads, head_dim = kv_heads_and_dim(self.model.config)
        slot = 2 * self.model.config.num_hidden_layers * kv_heads * head_dim * self.dtype.itemsize
        return int(fraction * torch.cuda.mem_get_info(self.device)[0] / slot)

    # -- model calls -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """The model as this loop runs it: its CUDA device current, the loop's attention, the fused kernels and
        projections patched in (all undone on exit)."""
        # The current CUDA device must be the model's: graph capture, side streams and Triton kernels use it (a
        # data-parallel rank decodes on cuda:LOCAL_RANK while the current device is still cuda:0).
        on_device = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with on_device, self._our_attention(), contextlib.ExitStack() as fused:
            for applied in self._fused:  # Liger's kernels, then the fused projections inside them
                fused.enter_context(applied(self.model))
            yield

    @contextlib.contextmanager
    def _our_attention(self) -> Iterator[None]:
        config = self.model.config
        previous = config._attn_implementation
        config._attn_implementation = ATTENTION_NAMES[self.decode_attention]
        try:
            yield
        finally:
            config._attn_implementation = previous

    def _logits(self, input_ids, mask, positions, cache) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_kw: cache})  # fmt: skip
        return out.logits[:, -1]

    def _hf_step(self, tokens, positions, attend, cache) -> torch.Tensor:
        """A decode step through the model's own forward (``attend (B, kv_len)`` marks the attended cache slots)."""
        return self._logits(tokens, attend.view(attend.shape[0], 1, 1, -1), positions, cache)

    # -- sessions ----------------------------------------------------------------------------------------------------

    def _session_for(self, rows: int, length: int, max_new: int, sampling: tuple[float, float, bool]) -> _Session:
        s = self._session
        if s is not None and s.cache.rows == rows and s.cache.length >= length and s.out.shape[1] >= max_new:
            if s.sampling != sampling:  # the graphs baked in the old sampling settings
                s.graphs.clear()
                s.sampling = sampling
            return s
        s = self._session = None  # free the old buffers (no reference left, this one included) before new ones
        device = self.device
        longs = {"dtype": torch.long, "device": device}
        counters = torch.zeros(2, **longs)
        self._session = _Session(
            cache=StaticKVCache(self.model.config, rows, length, self.dtype, device, position=counters[1:]),
            tokens=torch.zeros(rows, 1, **longs),
            positions=torch.zeros(rows, 1, **longs),
            valid=torch.ones(rows, length, dtype=torch.bool, device=device),
            finished=torch.zeros(rows, dtype=torch.bool, device=device),
            out=torch.full((rows, max_new), self.pad_token_id, **longs),
            counters=counters,
            step=counters[:1],
            eos=torch.tensor(self.eos_token_ids or [-1], **longs),
            pad=torch.tensor(self.pad_token_id, **longs),
            sampling=sampling,
        )
        return self._session

    # -- decoding ----------------------------------------------------------------------------------------------------

    def _decode_step(self, s: _Session, kv_len: int, ring: bool = False) -> None:
        """One token for every row, entirely on the device (so it can be captured as a graph).

        ``ring`` (continuous batching): the cache is a ring that every row writes at the same slot; a row attends to
        the slots ``valid`` marks (its prompt's and its own tokens'), and ``out`` is a ring of columns."""
        temperature, top_p, ignore_eos = s.sampling
        attend = s.valid if ring else s.valid[:, :kv_len]
        if not self.fused_layers:  # HF's attention reads the new token from the slot it has just written
            s.valid.index_fill_(1, s.cache.position, True)
        s.cache.ring = ring
        logits = self._decode_logits(s.tokens, s.positions, attend, s.cache)
        if self.fused_layers:  # the own layers attend to it from registers, and to the slots written before it
            s.valid.index_fill_(1, s.cache.position, True)
        if self.kernels:
            self._finish_step(s, scores(logits, temperature, top_p), ignore_eos)
        else:
            self._record(s, choose_tokens(logits, temperature, top_p), ignore_eos, ring)
            s.positions.add_(1)
        s.counters.add_(1)  # the step and the cache's write slot
        if ring:
            s.cache.position.remainder_(s.cache.length)

    def _record(self, s: _Session, new: torch.Tensor, ignore_eos: bool, ring: bool = False) -> None:
        """Rows' new tokens (pad once finished) into ``out``'s column ``step`` and as their next input."""
        new = torch.where(s.finished, s.pad, new)
        s.out.index_copy_(1, s.step.remainder(s.out.shape[1]) if ring else s.step, new.unsqueeze(1))
        if not ignore_eos:
            s.finished.logical_or_(new.unsqueeze(1).eq(s.eos).any(1))
        s.tokens.copy_(new.unsqueeze(1))

    def _finish_step(self, s: _Session, x: torch.Tensor, ignore_eos: bool) -> None:
        """:meth:`_record` of ``x``'s argmax and the rows' positions advanced, in two Triton kernels (not 9-12)."""
        import triton

        from guard_eval.generation._decode_attention_kernels import finish_step

        values, indices = argmax_parts(x)
        splits = values.shape[1]
        finish_step[(x.shape[0],)](
            values, indices, s.finished, s.out, s.tokens, s.positions, s.step, s.eos, self.pad_token_id, x.shape[1],
            s.eos.numel(), s.out.stride(0), s.out.shape[1], SPLITS=splits, BLOCK_S=triton.next_power_of_2(splits),
            BLOCK_E=triton.next_power_of_2(s.eos.numel()), CHECK_EOS=not ignore_eos,
        )  # fmt: skip

    def _run_step(self, s: _Session, kv_len: int, ring: bool = False) -> None:
        if not self.cuda_graphs:
            self._decode_step(s, kv_len, ring)
            return
        graph = s.graphs.get((kv_len, ring))
        if graph is not None:
            graph.replay()
            return
        # First step at this length: run it for real on a side stream (warming up cuBLAS and the allocator, as
        # capture requires), then record the same step as a graph; recording runs nothing.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._decode_step(s, kv_len, ring)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=s.pool):
            self._decode_step(s, kv_len, ring)
        s.pool = s.pool if s.pool is not None else graph.pool()
        s.graphs[(kv_len, ring)] = graph

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **options: Any) -> torch.Tensor:
        """New token ids ``(prompts * num_samples, n <= max_new_tokens)``, pad-filled after each row's EOS (the
        result of :meth:`launch`)."""
        return self.launch(input_ids, attention_mask, **options).result()

    @torch.inference_mode()
    def launch(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        num_samples: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        ignore_eos: bool = False,
    ) -> HostCopy:
        """Queue a batch's generation on the device; returns once its last step is queued, so the caller can prepare
        the next batch (or finish the previous one) while the device works. ``.result()`` waits for the new ids.

        ``input_ids``/``attention_mask`` are left-padded ``(prompts, length)``; the samples of prompt ``i`` are rows
        ``i * num_samples ...``. ``ignore_eos`` forces ``max_new_tokens`` tokens (benchmarks).

        Every ``check_every`` steps the host asks whether every row has finished, and reads the answer one step
        later: the device always has a step queued, so it never waits for the host (a synchronous check left it
        idle at each one). A batch that has finished wastes that one step and returns the same ids.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if seed is not None:
            torch.manual_seed(seed)
        # What the host needs (lengths, the packing) comes from host tensors, and they reach the device without a
        # synchronising copy: the batch is queued while the previous one still runs.
        input_ids, attention_mask = input_ids.cpu(), attention_mask.cpu().bool()
        positions = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
        prompts, prompt_len = input_ids.shape
        rows = prompts * num_samples
        length = -(-(prompt_len + max_new_tokens - 1) // self.bucket) * self.bucket
        s = self._session_for(rows, length, max_new_tokens, (temperature, top_p, ignore_eos))
        s.valid.fill_(False)
        s.valid[:, :prompt_len] = self._to_device(attention_mask).repeat_interleave(num_samples, dim=0)
        s.finished.fill_(False)
        s.out.fill_(self.pad_token_id)
        s.step.zero_()
        with self.decoding():
            first = self._prefill(s, input_ids, attention_mask, positions, num_samples, temperature, top_p)
            self._record(s, first, ignore_eos)
            s.step.fill_(1)
            s.positions.copy_(self._to_device(positions[:, -1:]).repeat_interleave(num_samples, dim=0) + 1)
            s.cache.position.fill_(prompt_len)
            done, check = 1, None
            while done < max_new_tokens:
                if done % self.check_every == 0 and not ignore_eos:
                    check = (done, HostCopy(s.finished.all()))
                attended = prompt_len + done  # slots holding keys after this step's write
                self._run_step(s, min(-(-attended // self.bucket) * self.bucket, s.cache.length))
                done += 1
                if check is not None:
                    if check[1].result():
                        done = check[0]
                        break
                    check = None
            return HostCopy(s.out[:, :done])  # copied now: the buffer is reused by the next call

    def generate_continuous(self, prompts: Sequence[Sequence[int]], **options: Any) -> list[list[int]]:
        """New token ids of each prompt (token id lists, no padding), up to and including its EOS: the collected
        :meth:`stream_continuous` (same options)."""
        results: list[list[int]] = [[] for _ in prompts]
        for finished in self.stream_continuous(prompts, **options):
            for i, tokens in finished:
                results[i] = tokens
        return results

    @torch.inference_mode()  # (torch enters it again at each resume of the generator)
    def stream_continuous(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        rows: int,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[list[tuple[int, list[int]]]]:
        """Decode ``rows`` prompts at a time, giving a row to the next prompt as soon as its own is done ("continuous
        batching"), and yield the prompts done at each check as ``(index, new token ids up to and including EOS)``.

        A static batch decodes until its longest answer ends, its finished rows idle; here every ``check_every``
        steps the host collects the finished rows and prefills the next prompts into them. The cache is a ring
        every row writes at the same slot: a new prompt goes into the slots just before it, and each row attends to
        its own slots only (``valid``). Greedy rows decode the same tokens as :meth:`generate` (up to the order of
        float sums in attention); prompts are started in the given order. A batch of finished prompts is yielded
        once the next steps are queued, so the caller's work on it overlaps them."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not prompts:
            return
        if seed is not None:
            torch.manual_seed(seed)
        rows = max(1, min(rows, len(prompts)))
        width = max_new_tokens + self.check_every + 1  # out's ring of columns: a row's tokens, and a check's overrun
        span = max(map(len, prompts)) + width  # the most slots one row's prompt and tokens hold at once
        s = self._session_for(rows, -(-span // self.bucket) * self.bucket, width, (temperature, top_p, ignore_eos))
        width = s.out.shape[1]  # a reused session's may be wider; the steps write modulo its width
        s.valid.fill_(False)
        s.finished.fill_(True)  # idle rows: nothing to decode, pad tokens out
        s.out.fill_(self.pad_token_id)
        s.tokens.fill_(self.pad_token_id)
        s.positions.zero_()
        s.cache.position.zero_()
        s.step.fill_(1)  # a row's first token (from its prefill) goes in the column before the next step's
        owner, start = [-1] * rows, [0] * rows  # the prompt each row decodes, and the step it started at
        queue = iter(range(len(prompts)))
        free: list[int] = []  # rows whose prompt is done, waiting for a refill
        ready: list[tuple[int, list[int]]] = []  # done prompts not yet yielded
        step = 1
        with self.decoding():
            self._refill(s, list(range(rows)), [next(queue) for _ in range(rows)], prompts, owner, start, step)
            while any(i >= 0 for i in owner):
                for _ in range(self.check_every):
                    self._run_step(s, s.cache.length, ring=True)
                if ready:
                    yield ready
                    ready = []
                step += self.check_every
                finished = s.finished.tolist()
                done = [r for r, i in enumerate(owner) if i >= 0 and (finished[r] or step - start[r] >= max_new_tokens)]
                if done:
                    for r, row in zip(done, s.out[done].tolist()):
                        tokens = [row[(start[r] + j) % width] for j in range(min(step - start[r], max_new_tokens))]
                        if not ignore_eos:
                            end = next((j for j, t in enumerate(tokens) if t in self.eos_token_ids), len(tokens) - 1)
                            tokens = tokens[: end + 1]
                        ready.append((owner[r], tokens))
                        owner[r] = -1
                    s.finished[done] = True  # idle until refilled: pad tokens, attending only to their own new slots
                    s.valid[done] = False
                    free += done
                # A refill is a prefill forward: wait until enough rows wait for one (or every row does).
                if free and (len(free) >= self.refill_at * rows or len(free) == rows):
                    following = [i for _, i in zip(free, queue)]
                    self._refill(s, free[: len(following)], following, prompts, owner, start, step)
                    free = free[len(following) :] if following else []  # none left to start: the rest stays idle
        if ready:
            yield ready

    def _refill(self, s: _Session, rows: list[int], items: list[int], prompts, owner, start, step: int) -> None:
        """Prefill ``prompts[i]`` for ``i`` in ``items`` into ``rows``: its keys in the slots just before the ring's
        write slot, its first token as the row's token of column ``step - 1``."""
        from guard_eval.generation.hf import left_padded

        if not rows:
            return
        temperature, top_p, ignore_eos = s.sampling
        position = (step - 1) % s.cache.length  # the slot the next decode step writes (one a step since step 1)
        chunk = max(1, self.prefill_tokens // max(1, *(len(prompts[i]) for i in items)))
        for at in range(0, len(rows), chunk):
            part, which = rows[at : at + chunk], items[at : at + chunk]
            enc = left_padded([list(prompts[i]) for i in which], self.pad_token_id)
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device).bool()
            w = ids.shape[1]
            index = torch.tensor(part, device=self.device)
            slots = (position - w + torch.arange(w, device=self.device)) % s.cache.length
            positions = (mask.long().cumsum(-1) - 1).clamp_(min=0)
            with s.cache.scattering(index, slots):
                logits = self._logits(ids, prompt_attention(mask), positions, s.cache)
            first = choose_tokens(logits, temperature, top_p, self.kernels)
            s.valid[index] = False
            s.valid[index[:, None], slots[None, :]] = mask
            s.tokens[index, 0] = first
            s.positions[index, 0] = positions[:, -1] + 1
            s.finished[index] = False if ignore_eos else first[:, None].eq(s.eos).any(1)
            s.out[index, (step - 1) % s.out.shape[1]] = first
            for r, i in zip(part, which):
                owner[r], start[r] = i, step - 1

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device, without waiting for the device (a pageable copy waits for queued work)."""
        return t.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else t

    def _prefill(self, s, input_ids, attention_mask, positions, num_samples, temperature, top_p) -> torch.Tensor:
        """Run the prompts (host tensors) in chunks of about ``prefill_tokens``, writing each prompt's cache
        ``num_samples`` times; the first new tokens. Packed (no padding) when :attr:`packed_prefill` is on and no
        prompt is empty; else padded, each chunk without the left padding all of its rows have (its keys go to the
        same slots)."""
        prompts, prompt_len = input_ids.shape
        lengths = attention_mask.sum(1).tolist()
        firsts = []
        if self.packed_prefill and min(lengths) > 0:
            for start, stop in _chunks(lengths, self.prefill_tokens):
                p = packed.pack(input_ids[start:stop], attention_mask[start:stop], positions[start:stop])
                p = p.to(self._to_device)
                with s.cache.packing((start + p.prompt) * num_samples, p.slots, num_samples, self.kernels):
                    out = self.model(input_ids=p.ids, position_ids=p.positions, use_cache=True, logits_to_keep=p.last,
                                     **{self._cache_kw: s.cache}, **p.attention_kwargs())  # fmt: skip
                firsts.append(choose_tokens(out.logits[0].repeat_interleave(num_samples, dim=0), temperature, top_p,
                                           self.kernels))
            return torch.cat(firsts)
        chunk = max(1, self.prefill_tokens // prompt_len)
        for start in range(0, prompts, chunk):
            stop = min(start + chunk, prompts)
            offset = prompt_len - max(1, max(lengths[start:stop]))
            rows, cols = slice(start, stop), slice(offset, None)
            ids, mask, pos = (self._to_device(t[rows, cols]) for t in (input_ids, attention_mask, positions))
            with s.cache.prefilling(start * num_samples, num_samples, offset):
                logits = self._logits(ids, prompt_attention(mask), pos, s.cache)
            firsts.append(choose_tokens(logits.repeat_interleave(num_samples, dim=0), temperature, top_p, self.kernels))
        return torch.cat(firsts)


def _chunks(lengths: list[int], budget: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` runs of consecutive prompts of at most ``budget`` tokens together (at least one prompt)."""
    start = 0
    while start < len(lengths):
        stop, total = start + 1, lengths[start]
        while stop < len(lengths) and total + lengths[stop] <= budget:
            total += lengths[stop]
            stop += 1
        yield start, stop
        start = stop
