#!/usr/bin/env python
"""Where a 256-row throughput batch of the fast loop spends its wall time besides the decode steps: the prefill's
kernels and variants of its attention, the host's work between batches, and the GPU's idle time over a whole run.

    python benchmarks/prefill_probe.py --json OUT/prefill.json   # random Llama-3.2-1B shape, speed only
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_throughput import guard_items, load_shape


def timed(fn, repeat: int = 5) -> float:
    """Median ms of ``fn()`` (synchronised), after one warm-up call."""
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def kernel_groups(prof) -> dict[str, float]:
    """ms of kernel time by kind: GEMMs (cuBLAS nvjet/sm90 gemm), attention, the rest by name."""
    groups: dict[str, float] = {}
    for e in prof.key_averages():
        if not e.self_device_time_total:
            continue
        name = e.key
        kind = ("gemm" if "nvjet" in name or "gemm" in name.lower() else
                "attention" if "sdpa" in name or "attention" in name or "flash" in name.lower() else name[:60])  # fmt: skip
        groups[kind] = groups.get(kind, 0.0) + e.self_device_time_total / 1e3
    return dict(sorted(groups.items(), key=lambda kv: -kv[1])[:14])


def busy_and_gaps(prof, wall_ms: float) -> dict:
    """The union of kernel intervals over a profiled run, and its largest idle gaps."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type.name == "CUDA" and e.time_range.end > e.time_range.start)  # fmt: skip
    busy, gaps, end = 0.0, [], None
    first = spans[0][0] if spans else 0
    for s, e in spans:
        if end is None or s > end:
            if end is not None:
                gaps.append((s - end, end - first))
            busy += e - s
            end = e
        elif e > end:
            busy += e - end
            end = e
    gaps.sort(reverse=True)
    return {"wall_ms": wall_ms, "gpu_span_ms": (end - first) / 1e3 if spans else 0, "busy_ms": busy / 1e3,
            "idle_ms": ((end - first) - busy) / 1e3 if spans else 0,
            "gaps_over_100us": sum(1 for g, _ in gaps if g > 100),
            "idle_in_gaps_over_100us_ms": sum(g for g, _ in gaps if g > 100) / 1e3,
            "largest_gaps_us_at_ms": [(round(g), round(at / 1e3, 1)) for g, at in gaps[:12]]}  # fmt: skip


def packed_check(model, tokenizer, texts: list[str]) -> dict:
    """bf16: packed vs padded prefill of the same 64 prompts (cache at the prompt slots, first tokens, 32 greedy
    tokens); float32: the packed prefill (SDPA per prompt there) against ``model.generate``, 16 prompts x 32 tokens."""
    import torch

    from guard_eval.generation.fast_decode import StaticDecoder
    from guard_eval.generation.hf import eos_token_ids

    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    kw = {"pad_token_id": tokenizer.pad_token_id, "eos_token_ids": eos_token_ids(model, tokenizer)}
    result: dict = {}
    runs = {}
    for packed in (True, False):
        d = StaticDecoder(model, packed_prefill=packed, **kw)
        result[f"reason_{packed}"] = d.reasons["packed_prefill"]
        out = d.generate(ids, mask, max_new_tokens=32, ignore_eos=True)
        width = ids.shape[1]
        keys = torch.stack([d._session.cache.keys[i][:, :, :width] for i in (0, -1)]).float()
        runs[packed] = (out, keys * mask.to(keys.device).bool()[None, :, None, :, None])
    (a, ka), (b, kb) = runs[True], runs[False]
    result["cache_max_abs_diff"] = float((ka - kb).abs().max())
    result["cache_max_abs"] = float(kb.abs().max())
    result["first_token_agreement"] = float((a[:, 0] == b[:, 0]).float().mean())
    result["token_agreement_32"] = float((a == b).float().mean())
    del runs, a, b, ka, kb
    model32, _ = load_shape("llama-3.2-1b", "cuda", "float32", Path("/tmp/guard-bench-probe"))  # same seed: same weights
    d = StaticDecoder(model32, packed_prefill=True, **kw)
    result["fp32_reason"] = d.reasons["packed_prefill"]
    e16 = tokenizer(texts[:16], return_tensors="pt", padding=True, add_special_tokens=False).to("cuda")
    fast = d.generate(e16["input_ids"], e16["attention_mask"], max_new_tokens=32, ignore_eos=True).cuda()
    plain = model32.generate(**e16, max_new_tokens=32, min_new_tokens=32, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)[:, e16["input_ids"].shape[1]:]  # fmt: skip
    result["fp32_sequences_equal_generate"] = f"{int((fast == plain).all(1).sum())}/16"
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--json", required=True)
    args = p.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from guard_eval.generation import GenerationConfig
    from guard_eval.generation import hf as hf_module
    from guard_eval.generation.hf import HFBackend, encode_batch, left_padded

    out: dict = {"torch": torch.__version__}
    try:
        from torch.nn.attention import varlen

        out["varlen_signature"] = str(inspect.signature(varlen.varlen_attn))
    except Exception as e:  # noqa: BLE001 - report what this torch has
        out["varlen_signature"] = f"unavailable: {e!r}"
    print(out, flush=True)

    model, tokenizer = load_shape("llama-3.2-1b", "cuda", "bfloat16", Path("/tmp/guard-bench-probe"))
    backend = HFBackend.from_loaded(model, tokenizer)
    decoder = backend.decoder
    texts = guard_items(2 * args.rows, tokenizer)
    config = GenerationConfig(max_new_tokens=256, batch_size=args.rows, temperature=0.0)

    # 1. host phases of a run (wrapped, no synchronisation added)
    spent: dict[str, float] = {}

    def wrap(module, name):
        fn = getattr(module, name)

        def timed_fn(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + 1e3 * (time.perf_counter() - start)

        setattr(module, name, timed_fn)
        return fn

    backend.generate(texts, config, ignore_eos=True)  # warm-up: graphs, plans
    torch.cuda.synchronize()
    originals = {n: wrap(hf_module, n) for n in ("encode_batch", "left_padded", "decode_batch", "render_prompt")}
    start = time.perf_counter()
    backend.generate(texts, config, ignore_eos=True)
    torch.cuda.synchronize()
    out["run_ms"] = 1e3 * (time.perf_counter() - start)
    out["host_phases_ms"] = dict(spent)
    for n, fn in originals.items():
        setattr(hf_module, n, fn)

    # 2. GPU busy vs idle over the same run
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        backend.generate(texts, config, ignore_eos=True)
        torch.cuda.synchronize()
        wall = 1e3 * (time.perf_counter() - start)
    out["timeline"] = busy_and_gaps(prof, wall)
    print(json.dumps(out, indent=1), flush=True)

    # 3. the prefill of the first batch: time, kernels, and with other chunk sizes / SDPA backends
    ids = encode_batch(tokenizer, texts, False)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    enc = left_padded([ids[i] for i in order[: args.rows]], tokenizer.pad_token_id)
    real = int(enc["attention_mask"].sum())

    def prefill():
        return lambda: decoder.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=1, ignore_eos=True)

    base_tokens = decoder.prefill_tokens
    variants = {}
    for tokens in (base_tokens, 16384, 65536):
        decoder.prefill_tokens = tokens
        variants[f"prefill_tokens={tokens}"] = timed(prefill())
    decoder.prefill_tokens = base_tokens
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for name in ("CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
        try:
            with sdpa_kernel([getattr(SDPBackend, name)]):
                variants[name] = timed(prefill())
        except Exception as e:  # noqa: BLE001
            variants[name] = f"failed: {e!r}"[:200]
    out["prefill"] = {"rows": args.rows, "width": enc["input_ids"].shape[1], "real_tokens": real, "ms": variants}
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        prefill()()
        torch.cuda.synchronize()
    out["prefill"]["kernels_ms"] = kernel_groups(prof)
    print(json.dumps(out["prefill"], indent=1), flush=True)

    # 4. the attention of one prefill chunk alone: today's masked SDPA on repeated K/V against varlen flash
    heads, kv_heads, dim = 32, 8, 64
    lengths = enc["attention_mask"].sum(1)[:150].tolist()
    width = max(lengths)
    q = torch.randn(150, heads, width, dim, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(150, kv_heads, width, dim, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    from guard_eval.generation.fast_decode import prompt_attention

    mask = prompt_attention(enc["attention_mask"][:150, -width:].cuda().bool())
    att: dict = {}
    att["sdpa_mask_repeat"] = timed(lambda: F.scaled_dot_product_attention(
        q, k.repeat_interleave(4, 1), v.repeat_interleave(4, 1), attn_mask=mask).transpose(1, 2).contiguous())
    try:
        att["sdpa_mask_gqa"] = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True))
    except Exception as e:  # noqa: BLE001
        att["sdpa_mask_gqa"] = f"failed: {e!r}"[:200]
    total = sum(lengths)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    qp = torch.randn(total, heads, dim, device="cuda", dtype=torch.bfloat16)
    kp = torch.randn(total, kv_heads, dim, device="cuda", dtype=torch.bfloat16)
    vp = torch.randn_like(kp)
    try:
        from torch.nn.attention.varlen import varlen_attn

        params = inspect.signature(varlen_attn).parameters
        causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
        gqa = {"enable_gqa": True} if "enable_gqa" in params else {}
        try:
            att["varlen_gqa"] = timed(lambda: varlen_attn(qp, kp, vp, cu, cu, width, width, **causal, **gqa))
        except Exception as e:  # noqa: BLE001
            att["varlen_gqa"] = f"failed: {e!r}"[:300]
        kr, vr = kp.repeat_interleave(4, 1), vp.repeat_interleave(4, 1)
        att["varlen_repeated"] = timed(lambda: varlen_attn(qp, kr, vr, cu, cu, width, width, **causal))
        # agreement with the masked SDPA on the same numbers (row 0..2)
        ref = []
        for i, n in enumerate(lengths[:3]):
            s = int(cu[i])
            qi, ki, vi = (t[s : s + n].transpose(0, 1) for t in (qp, kr, vr))
            ref.append(F.scaled_dot_product_attention(qi, ki, vi, is_causal=True).transpose(0, 1))
        got = varlen_attn(qp, kr, vr, cu, cu, width, width, **causal)
        att["varlen_max_abs_diff"] = max(float((got[int(cu[i]) : int(cu[i]) + n] - r).abs().max())
                                         for i, (n, r) in enumerate(zip(lengths[:3], ref)))  # fmt: skip
    except Exception as e:  # noqa: BLE001
        att["varlen"] = f"failed: {e!r}"[:300]
    out["chunk_attention_ms"] = {"rows": 150, "width": width, "real_tokens": total, **att}
    print(json.dumps(out["chunk_attention_ms"], indent=1), flush=True)

    # 5. the packed prefill against the padded one: the same cache (bf16) and generate's tokens (float32)
    if "packed_prefill" in inspect.signature(type(decoder).__init__).parameters:
        out["packed_check"] = packed_check(model, tokenizer, texts[:64])
        print(json.dumps(out["packed_check"], indent=1), flush=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
