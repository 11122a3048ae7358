"""The fast loop's Triton kernels: the decode attention (:mod:`guard_eval.generation.decode_attention`, with the
rotary embedding and cache write of :mod:`~guard_eval.generation.decode_layers` inside), the packed prefill's cache
write (:mod:`~guard_eval.generation.packed_prefill`), :func:`~guard_eval.generation.fast_decode.argmax` and a decode
step's bookkeeping (imported only when they run).

Kept in a module of their own: Triton decides at decoration time whether a kernel runs compiled or under
``TRITON_INTERPRET=1``, and the interpreter patches ``tl`` in the kernels' module globals.
"""

import triton
import triton.language as tl


@triton.jit
def _attend_block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale, acc, l_i, m_i,
                  PRECISION: tl.constexpr):  # fmt: skip
    """One block of slots ``n`` into the running softmax (``m_i``, ``l_i``, ``acc``); masked slots load nothing."""
    k = tl.load(k_base + n[:, None] * stride_kt + d[None, :], mask=attend[:, None], other=0.0)
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale
    qk = tl.where(attend[None, :], qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # no slot attended yet: exp(-inf - 0) = 0, not NaN
    p = tl.exp(qk - m_safe[:, None])
    alpha = tl.exp(m_i - m_safe)
    v = tl.load(v_base + n[:, None] * stride_vt + d[None, :], mask=attend[:, None], other=0.0)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, l_i * alpha + tl.sum(p, 1), m_new


@triton.jit
def _rotated(X, d, cos, sin, mask, HEAD_DIM: tl.constexpr):
    """HF's rotate-half rotary embedding of the head vectors at ``X + d`` (``d`` the last axis), in float32:
    ``x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = (-x[HALF:], x[:HALF])``."""
    half = HEAD_DIM // 2
    partner = tl.where(d < half, d + half, d - half)
    x = tl.load(X + d, mask=mask, other=0.0).to(tl.float32)
    swapped = tl.load(X + partner, mask=mask, other=0.0).to(tl.float32)
    return x * cos + tl.where(d < half, -swapped, swapped) * sin


@triton.jit
def _add_new_token(q, NewK, NewV, k_slot, v_slot, d, cos, sin, scale, acc, l_i, m_i, HEAD_DIM: tl.constexpr):
    """The decode step's own token: its key rotated, key and value written into the cache slot, and one more slot in
    the running softmax (``m_i``, ``l_i``, ``acc``) from registers."""
    k = _rotated(NewK, d, cos, sin, d < HEAD_DIM, HEAD_DIM).to(k_slot.dtype.element_ty)
    v = tl.load(NewV + d)
    tl.store(k_slot + d, k)
    tl.store(v_slot + d, v)
    qk = tl.sum(q.to(tl.float32) * k.to(tl.float32)[None, :], 1) * scale
    m_new = tl.maximum(m_i, qk)
    alpha = tl.exp(m_i - m_new)  # (m_new is finite: the new token is always attended)
    p = tl.exp(qk - m_new)
    return acc * alpha[:, None] + p[:, None] * v.to(tl.float32)[None, :], l_i * alpha + p, m_new


@triton.jit
def partial_attention(
    Q, K, V, Mask, Out, Acc, Stats,
    stride_qb, stride_qh, stride_kb, stride_kh, stride_kt, stride_vb, stride_vh, stride_vt, stride_mb,
    kv_len, split_len, scale,
    NewK, NewV, Cos, Sin, Slot, stride_nkb, stride_nkh, stride_nvb, stride_nvh, stride_cos,
    GROUPS: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    SPLITS: tl.constexpr, PRECISION: tl.constexpr, SKIP_EMPTY: tl.constexpr, NEW: tl.constexpr,
):  # fmt: skip
    """Attention of one row's query heads of one KV head over one split of its cache slots (``Mask`` marks the
    attended ones). ``NEW``: the decode step's token itself comes in too, its query, key and value straight from
    the q/k/v GEMM: the kernel rotates them (the row's ``Cos``/``Sin``), writes the key and value into slot ``Slot``
    of the caches and attends to the token from registers (split 0 does both)."""
    row, kv_head, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, HEAD_DIM)
    heads = kv_head * GROUPS + g
    in_group = (g < GROUPS)[:, None]
    q_rows = Q + row * stride_qb + heads[:, None] * stride_qh
    k_base = K + row * stride_kb + kv_head * stride_kh
    v_base = V + row * stride_vb + kv_head * stride_vh
    if NEW:
        cos = tl.load(Cos + row * stride_cos + d).to(tl.float32)
        sin = tl.load(Sin + row * stride_cos + d).to(tl.float32)
        q = _rotated(q_rows, d[None, :], cos[None, :], sin[None, :], in_group, HEAD_DIM).to(Q.dtype.element_ty)
    else:
        q = tl.load(q_rows + d[None, :], mask=in_group, other=0.0)
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    lo = split * split_len
    hi = tl.minimum(lo + split_len, kv_len)
    for start in range(lo, hi, BLOCK_N):
        n = start + tl.arange(0, BLOCK_N)
        attend = tl.load(Mask + row * stride_mb + n, mask=n < hi, other=0) != 0
        # Skipping a block no slot of which is attended is a branch, and a branch stops Triton pipelining the loads:
        # 15-18% slower at 256 rows when most blocks are attended (a left-padded batch). A continuous batch's ring
        # is mostly other rows' slots, so there it pays (SKIP_EMPTY).
        if SKIP_EMPTY:
            if tl.max(attend.to(tl.int32), 0) > 0:
                acc, l_i, m_i = _attend_block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale,
                                              acc, l_i, m_i, PRECISION)  # fmt: skip
        else:
            acc, l_i, m_i = _attend_block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale,
                                          acc, l_i, m_i, PRECISION)  # fmt: skip
    if NEW:  # after the loop: a branch before it slowed the loop down (benchmarks/fused_attention_probe.py)
        slot = tl.load(Slot)
        new_k, new_v = NewK + row * stride_nkb + kv_head * stride_nkh, NewV + row * stride_nvb + kv_head * stride_nvh
        k_slot, v_slot = k_base + slot * stride_kt, v_base + slot * stride_vt
        if SPLITS == 1:  # noqa: SIM114 -- a compile-time branch; `or split == 0` would make it a runtime one
            acc, l_i, m_i = _add_new_token(q, new_k, new_v, k_slot, v_slot, d, cos, sin, scale, acc, l_i, m_i, HEAD_DIM)
        elif split == 0:
            acc, l_i, m_i = _add_new_token(q, new_k, new_v, k_slot, v_slot, d, cos, sin, scale, acc, l_i, m_i, HEAD_DIM)
    if SPLITS == 1:
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]  # (l_i is 0 only in the padding rows of the group)
        tl.store(Out + (row * GROUPS * tl.num_programs(1) + heads)[:, None] * HEAD_DIM + d[None, :],
                 out.to(Out.dtype.element_ty), mask=in_group)  # fmt: skip
    else:
        at = ((row * tl.num_programs(1) + kv_head) * SPLITS + split) * BLOCK_G + g
        tl.store(Acc + at[:, None] * HEAD_DIM + d[None, :], acc, mask=in_group)
        tl.store(Stats + at * 2, m_i, mask=g < GROUPS)
        tl.store(Stats + at * 2 + 1, l_i, mask=g < GROUPS)


@triton.jit
def merge_splits(
    Acc, Stats, Out,
    GROUPS: tl.constexpr, BLOCK_G: tl.constexpr, HEAD_DIM: tl.constexpr, SPLITS: tl.constexpr,
):  # fmt: skip
    row, kv_head = tl.program_id(0), tl.program_id(1)
    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, HEAD_DIM)
    base = (row * tl.num_programs(1) + kv_head) * SPLITS * BLOCK_G
    m = tl.full([BLOCK_G], float("-inf"), tl.float32)
    for s in range(SPLITS):
        m = tl.maximum(m, tl.load(Stats + (base + s * BLOCK_G + g) * 2))
    total = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    for s in range(SPLITS):
        at = base + s * BLOCK_G + g
        m_s = tl.load(Stats + at * 2)
        weight = tl.where(m_s == float("-inf"), 0.0, tl.exp(m_s - m))  # a split with no attended slot adds 0
        total += tl.load(Stats + at * 2 + 1) * weight
        acc += tl.load(Acc + at[:, None] * HEAD_DIM + d[None, :]) * weight[:, None]
    heads = kv_head * GROUPS + g
    tl.store(Out + (row * GROUPS * tl.num_programs(1) + heads)[:, None] * HEAD_DIM + d[None, :],
             (acc / tl.where(total > 0, total, 1.0)[:, None]).to(Out.dtype.element_ty), mask=(g < GROUPS)[:, None])  # fmt: skip


@triton.jit
def argmax_partial(X, Values, Indices, n_cols, stride_x, SPLITS, BLOCK: tl.constexpr):
    """The largest of ``BLOCK`` columns of a row (as float32) and the first column holding it."""
    row, part = tl.program_id(0), tl.program_id(1)
    cols = part * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(X + row * stride_x + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
    best = tl.max(x, 0)
    first = tl.min(tl.where(x == best, cols, n_cols - 1), 0)  # n_cols - 1: a NaN row still gives a valid id
    tl.store(Values + row * SPLITS + part, best)
    tl.store(Indices + row * SPLITS + part, first)


@triton.jit
def finish_step(
    Values, Indices, Finished, Out, Tokens, Positions, Step, Eos, pad, n_cols, n_eos, stride_out, width,
    SPLITS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_E: tl.constexpr, CHECK_EOS: tl.constexpr,
):  # fmt: skip
    """A decode step's bookkeeping for one row: its token is the first column holding the largest of its
    :func:`argmax_partial` maxima (the pad token once the row has finished), written into column ``Step % width`` of
    ``Out`` and as the row's next input; an EOS token finishes the row (``CHECK_EOS``); its position advances."""
    row = tl.program_id(0)
    s = tl.arange(0, BLOCK_S)
    values = tl.load(Values + row * SPLITS + s, mask=s < SPLITS, other=float("-inf"))
    indices = tl.load(Indices + row * SPLITS + s, mask=s < SPLITS, other=n_cols)
    token = tl.min(tl.where(values == tl.max(values, 0), indices, n_cols - 1), 0)  # (n_cols - 1: a NaN row)
    done = tl.load(Finished + row)
    token = tl.where(done, pad, token)
    tl.store(Out + row * stride_out + tl.load(Step) % width, token)
    if CHECK_EOS:
        e = tl.arange(0, BLOCK_E)
        eos = tl.load(Eos + e, mask=e < n_eos, other=-1)
        tl.store(Finished + row, done | (tl.max((eos == token).to(tl.int32), 0) > 0))
    tl.store(Tokens + row, token)
    tl.store(Positions + row, tl.load(Positions + row) + 1)


@triton.jit
def packed_store(
    K, V, KCache, VCache, Rows, Slots, copies, stride_kt, stride_kh, stride_vt, stride_vh,
    stride_cache_b, stride_cache_h, stride_cache_t,
    KV_HEADS: tl.constexpr, BLOCK_H: tl.constexpr, DIM: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Packed token ``t``'s key and value heads into the caches' rows ``Rows[t] .. + copies``, slot ``Slots[t]``."""
    t = tl.program_id(0)
    row, slot = tl.load(Rows + t), tl.load(Slots + t)
    h = tl.arange(0, BLOCK_H)[:, None]
    d = tl.arange(0, BLOCK_D)[None, :]
    inside = (h < KV_HEADS) & (d < DIM)
    k = tl.load(K + t * stride_kt + h * stride_kh + d, mask=inside)
    v = tl.load(V + t * stride_vt + h * stride_vh + d, mask=inside)
    for c in range(copies):
        at = (row + c) * stride_cache_b + h * stride_cache_h + slot * stride_cache_t + d
        tl.store(KCache + at, k, mask=inside)
        tl.store(VCache + at, v, mask=inside)
