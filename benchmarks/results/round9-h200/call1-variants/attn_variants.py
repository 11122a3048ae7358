"""Scratch: decode-attention kernel variants vs the shipped one (not committed)."""
import json, os, sys, statistics
import torch, triton, triton.language as tl
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from decode_attention_bench import timed
from guard_eval.generation.decode_attention import decode_attention, choose_splits


@triton.jit
def _block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale, acc, l_i, m_i, HOIST: tl.constexpr):
    k = tl.load(k_base + n[:, None] * stride_kt + d[None, :], mask=attend[:, None], other=0.0)
    if HOIST:
        v = tl.load(v_base + n[:, None] * stride_vt + d[None, :], mask=attend[:, None], other=0.0)
    qk = tl.dot(q, tl.trans(k)) * scale
    qk = tl.where(attend[None, :], qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.exp(qk - m_safe[:, None])
    alpha = tl.exp(m_i - m_safe)
    if not HOIST:
        v = tl.load(v_base + n[:, None] * stride_vt + d[None, :], mask=attend[:, None], other=0.0)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    return acc, l_i * alpha + tl.sum(p, 1), m_new


@triton.jit
def attn_v(Q, K, V, Mask, Out, stride_qb, stride_qh, stride_kb, stride_kh, stride_kt, stride_vb, stride_vh, stride_vt,
           stride_mb, kv_len, scale, GROUPS: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr,
           HEAD_DIM: tl.constexpr, BRANCH: tl.constexpr, HOIST: tl.constexpr):
    row, kv_head = tl.program_id(0), tl.program_id(1)
    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, HEAD_DIM)
    heads = kv_head * GROUPS + g
    q = tl.load(Q + row * stride_qb + heads[:, None] * stride_qh + d[None, :], mask=(g < GROUPS)[:, None], other=0.0)
    k_base = K + row * stride_kb + kv_head * stride_kh
    v_base = V + row * stride_vb + kv_head * stride_vh
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    for start in range(0, kv_len, BLOCK_N):
        n = start + tl.arange(0, BLOCK_N)
        attend = tl.load(Mask + row * stride_mb + n, mask=n < kv_len, other=0) != 0
        if BRANCH:
            if tl.max(attend.to(tl.int32), 0) > 0:
                acc, l_i, m_i = _block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale, acc, l_i, m_i, HOIST)
        else:
            acc, l_i, m_i = _block(q, k_base, v_base, n, d, attend, stride_kt, stride_vt, scale, acc, l_i, m_i, HOIST)
    out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
    tl.store(Out + (row * GROUPS * tl.num_programs(1) + heads)[:, None] * HEAD_DIM + d[None, :],
             out.to(Out.dtype.element_ty), mask=(g < GROUPS)[:, None])


def run_variant(q, k, v, attend, scale, block, warps, stages, branch, hoist):
    b, h, _, dim = q.shape
    kvh = k.shape[1]
    groups = h // kvh
    qq = q.reshape(b, h, dim)
    out = torch.empty(b, h, dim, dtype=q.dtype, device=q.device)
    a = attend.view(torch.uint8)
    attn_v[(b, kvh)](qq, k, v, a, out, qq.stride(0), qq.stride(1), k.stride(0), k.stride(1), k.stride(2),
                     v.stride(0), v.stride(1), v.stride(2), a.stride(0), a.shape[1], scale,
                     GROUPS=groups, BLOCK_G=max(16, groups), BLOCK_N=block, HEAD_DIM=dim, BRANCH=branch, HOIST=hoist,
                     num_warps=warps, num_stages=stages)
    return out.unsqueeze(1)


def argmax_bench(rows, vocab=128256):
    x = torch.randn(rows, vocab, device="cuda", dtype=torch.bfloat16)
    return {"rows": rows, "argmax_us": timed(lambda: x.argmax(-1)), "max_us": timed(lambda: x.max(-1)),
            "float_argmax_us": timed(lambda: x.float().argmax(-1))}


def main():
    res = {"attention": [], "argmax": []}
    heads, kvh, dim, bucket = 32, 8, 64, 128
    for rows in (64, 256):
        for generated in (48, 128, 320):
            g = torch.Generator().manual_seed(rows)
            lengths = torch.randint(170, 186, (rows,), generator=g)
            prompt_len = int(lengths.max()); position = prompt_len + generated - 1
            kv_len = -(-(position + 1) // bucket) * bucket; total = kv_len + bucket
            q = torch.randn(rows, heads, 1, dim, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(rows, kvh, total, dim, device="cuda", dtype=torch.bfloat16)
            v = torch.randn(rows, kvh, total, dim, device="cuda", dtype=torch.bfloat16)
            slots = torch.arange(kv_len)
            attend = ((slots >= prompt_len - lengths[:, None]) & (slots <= position)).cuda()
            nbytes = int(attend.sum()) * kvh * dim * 4
            ref = decode_attention(q, k, v, attend, dim ** -0.5)
            row = {"rows": rows, "generated": generated, "kv_len": kv_len, "bytes": nbytes,
                   "shipped_us": timed(lambda: decode_attention(q, k, v, attend, dim ** -0.5)), "variants": []}
            for block in (64, 128):
                for warps in (2, 4):
                    for stages in (1, 2, 3):
                        for branch in (True, False):
                            for hoist in (False, True):
                                kw = dict(block=block, warps=warps, stages=stages, branch=branch, hoist=hoist)
                                try:
                                    o = run_variant(q, k, v, attend, dim ** -0.5, **kw)
                                    err = float((o.float() - ref.float()).abs().max())
                                    us = timed(lambda kw=kw: run_variant(q, k, v, attend, dim ** -0.5, **kw))
                                except Exception as e:  # noqa
                                    err, us = str(e)[:100], None
                                row["variants"].append({**kw, "us": us, "err": err})
            best = sorted([r for r in row["variants"] if r["us"]], key=lambda r: r["us"])[:4]
            print(rows, generated, kv_len, f"shipped {row['shipped_us']:.1f} us {nbytes / row['shipped_us'] / 1e3:.0f} GB/s", flush=True)
            for b in best:
                print("   ", b, f"{nbytes / b['us'] / 1e3:.0f} GB/s", flush=True)
            res["attention"].append(row)
    for rows in (64, 256):
        res["argmax"].append(argmax_bench(rows)); print(res["argmax"][-1], flush=True)
    json.dump(res, open(os.path.join(os.environ.get("OUT", "/tmp"), "variants.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
