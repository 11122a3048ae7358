"""The fast loop's Triton kernels: the decode attention (:mod:`guard_eval.generation.decode_attention`), the rotary
embedding and cache write of :mod:`~guard_eval.generation.decode_layers`, the packed prefill's cache write
(:mod:`~guard_eval.generation.packed_prefill`) and :func:`~guard_eval.generation.fast_decode.argmax` (imported only
when they run).

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
def partial_attention(
    Q, K, V, Mask, Out, Acc, Stats,
    stride_qb, stride_qh, stride_kb, stride_kh, stride_kt, stride_vb, stride_vh, stride_vt, stride_mb,
    kv_len, split_len, scale,
    GROUPS: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    SPLITS: tl.constexpr, PRECISION: tl.constexpr, SKIP_EMPTY: tl.constexpr,
):  # fmt: skip
    row, kv_head, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, HEAD_DIM)
    heads = kv_head * GROUPS + g
    q = tl.load(Q + row * stride_qb + heads[:, None] * stride_qh + d[None, :], mask=(g < GROUPS)[:, None], other=0.0)
    k_base = K + row * stride_kb + kv_head * stride_kh
    v_base = V + row * stride_vb + kv_head * stride_vh
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
    keep = (g < GROUPS)[:, None]
    if SPLITS == 1:
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]  # (l_i is 0 only in the padding rows of the group)
        tl.store(Out + (row * GROUPS * tl.num_programs(1) + heads)[:, None] * HEAD_DIM + d[None, :],
                 out.to(Out.dtype.element_ty), mask=keep)  # fmt: skip
    else:
        at = ((row * tl.num_programs(1) + kv_head) * SPLITS + split) * BLOCK_G + g
        tl.store(Acc + at[:, None] * HEAD_DIM + d[None, :], acc, mask=keep)
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
def rotary_store(
    Q, K, V, Cos, Sin, QOut, KCache, VCache, Position,
    stride_qb, stride_qh, stride_kb, stride_kh, stride_vb, stride_vh, stride_cb, stride_sb,
    stride_cache_b, stride_cache_h, stride_cache_t,
    HEADS: tl.constexpr, KV_HEADS: tl.constexpr, BLOCK_H: tl.constexpr, HALF: tl.constexpr,
):  # fmt: skip
    """One decode step's rotary embedding (HF's rotate-half form) of a row's query and key heads, the query to
    ``QOut (B, HEADS, 2 * HALF)``, the key and the value into the caches' slot ``Position`` (a device scalar)."""
    row = tl.program_id(0)
    pos = tl.load(Position)
    h = tl.arange(0, BLOCK_H)[:, None]
    d = tl.arange(0, HALF)[None, :]
    c1, c2 = tl.load(Cos + row * stride_cb + d), tl.load(Cos + row * stride_cb + HALF + d)
    s1, s2 = tl.load(Sin + row * stride_sb + d), tl.load(Sin + row * stride_sb + HALF + d)
    q = Q + row * stride_qb + h * stride_qh + d
    x1, x2 = tl.load(q, mask=h < HEADS), tl.load(q + HALF, mask=h < HEADS)
    out = QOut + (row * HEADS + h) * (2 * HALF) + d
    tl.store(out, (x1 * c1 - x2 * s1).to(QOut.dtype.element_ty), mask=h < HEADS)
    tl.store(out + HALF, (x2 * c2 + x1 * s2).to(QOut.dtype.element_ty), mask=h < HEADS)
    k = K + row * stride_kb + h * stride_kh + d
    x1, x2 = tl.load(k, mask=h < KV_HEADS), tl.load(k + HALF, mask=h < KV_HEADS)
    slot = row * stride_cache_b + h * stride_cache_h + pos * stride_cache_t + d
    tl.store(KCache + slot, (x1 * c1 - x2 * s1).to(KCache.dtype.element_ty), mask=h < KV_HEADS)
    tl.store(KCache + slot + HALF, (x2 * c2 + x1 * s2).to(KCache.dtype.element_ty), mask=h < KV_HEADS)
    v = V + row * stride_vb + h * stride_vh + d
    tl.store(VCache + slot, tl.load(v, mask=h < KV_HEADS), mask=h < KV_HEADS)
    tl.store(VCache + slot + HALF, tl.load(v + HALF, mask=h < KV_HEADS), mask=h < KV_HEADS)


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
