#!/usr/bin/env python
"""Generation throughput of guard-bench's HF backend against lm-eval's HF backend on the same items.

For a model shape (random weights: speed does not depend on them) or a checkpoint, each backend generates a forced
number of tokens for the same guard prompts (the embedded demo sets in the chat variant, cycled; greedy for one
completion per prompt, temperature 1 for several), after an identical warm-up run, and the script
prints one table: generated tokens/s, completions/s, the ratio to lm-eval's ``HFLM.generate_until`` on the same
run, and the fraction of the memory-bandwidth bound. The bound is what a decode step cannot beat: reading every
weight once, ``weight bytes / measured device-to-device copy bandwidth`` per step, so at most
``rows * bandwidth / weight_bytes`` tokens/s (KV-cache reads come on top; the table shows them separately).

Backends: ``fast`` (our static-cache loop with CUDA graphs, and Liger's fused kernels when installed: the default),
``fast-unfused`` (the same without fused kernels), ``fast-noproj`` (without fused projections), ``fast-nolayers``
(through HF's layer forward instead of the loop's own), ``fast-sdpa``
(SDPA decode attention), ``fast-compile`` (and ``torch.compile``), ``fast-eager`` (the same loop without graphs),
``generate`` (plain ``model.generate``, the old backend), ``lm-eval`` (needs lm_eval), ``vllm`` (needs vllm).

    python benchmarks/generation_throughput.py --shape llama-3.2-1b --batch-sizes 16 64 256 --output-len 256 \\
        --json benchmarks/results/h100-llama-3.2-1b.json
    python benchmarks/generation_throughput.py --shape tiny --batch-sizes 4 --output-len 16 --backends fast generate
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

# Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B), minus the weights.
LLAMA_3_2_1B = {
    "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "tie_word_embeddings": True,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192},
}  # fmt: skip
LLAMA_3_2_3B = {**LLAMA_3_2_1B, "hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 24,
                "head_dim": 128}  # fmt: skip
SHAPES = {"tiny": None, "llama-3.2-1b": LLAMA_3_2_1B, "llama-3.2-3b": LLAMA_3_2_3B}  # tiny: guard_eval.tiny's
# the fast loop and its variants: the HF backend's options each one sets
FAST = {"fast": {}, "fast-sdpa": {"decode_attention": "sdpa"}, "fast-unfused": {"fused_kernels": False},
        "fast-noproj": {"fused_projections": False}, "fast-nolayers": {"fused_layers": False},
        "fast-compile": {"compile": True},
        "fast-eager": {"cuda_graphs": False}}  # fmt: skip
BACKENDS = (*FAST, "generate", "lm-eval", "vllm")
NEVER = "<<guard-bench: never stop>>"
SAMPLING_TEMPERATURE = 1.0  # k > 1 completions per prompt are sampled (preference data), k = 1 is greedy
LM_EVAL_MAX_LENGTH = 8192  # lm-eval left-truncates prompts to max_length - max_gen_toks: keep them whole
BUILT: dict = {}  # backend name -> HFBackend built by make_runner (the greedy check reuses their compiled code)


# -- model and items ---------------------------------------------------------------------------------------------------


def load_shape(shape: str, device: str, dtype: str, workdir: Path):
    """A random-weight model of ``shape`` with guard_eval's local tokenizer (ids past its vocabulary decode to "")."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from guard_eval.modeling import load_model, load_tokenizer
    from guard_eval.tiny import build_tiny_model, build_tokenizer

    if SHAPES[shape] is None:
        path = build_tiny_model(workdir / "tiny")
        return load_model(str(path), device=device, dtype=dtype), load_tokenizer(str(path))
    tokenizer = build_tokenizer()
    tokenizer.padding_side = "left"
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**SHAPES[shape], **ids))
    model = model.to(getattr(torch, dtype)).eval()
    model.generation_config = GenerationConfig(**ids)
    return model, tokenizer


def guard_items(n: int, tokenizer) -> list[str]:
    """``n`` guard prompts (the demo sets, chat variant, rendered by the chat template), cycled in a fixed order."""
    from guard_eval.generation.hf import render_prompt
    from guard_eval.prompting import build_prompt
    from guard_eval.selection import resolve_benchmarks

    samples = [s for b in resolve_benchmarks(["demo"]) for s in b.load()]
    texts = [render_prompt(tokenizer, build_prompt(s.prompt, s.response, "chat")) for s in samples]
    return [texts[i % len(texts)] for i in range(n)]


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())  # tied embeddings count once


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * (config.num_key_value_heads or heads) * head_dim * dtype_bytes


def copy_bandwidth(device: str) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (median of 20)."""
    import torch

    if not device.startswith("cuda"):
        return float("nan")
    src = torch.randn(256 * 2**20, device=device)  # 1 GiB
    dst = torch.empty_like(src)
    times = []
    for _ in range(23):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del src, dst
    return 2 * 2**30 / statistics.median(times[3:])


# -- backends ----------------------------------------------------------------------------------------------------------


def make_runner(name: str, model, tokenizer):
    """``run(texts, rows_per_batch, num_samples, new_tokens) -> completions`` for one backend, forcing the length."""
    from guard_eval.generation import GenerationConfig
    from guard_eval.generation.hf import HFBackend

    if name in FAST or name == "generate":
        backend = BUILT[name] = HFBackend.from_loaded(model, tokenizer, fast=name != "generate", **FAST.get(name, {}))
        if backend.decoder is not None:
            print(f"{name}: {backend.decoder.reasons}", flush=True)

        def run(texts, rows, k, new_tokens):
            config = GenerationConfig(max_new_tokens=new_tokens, batch_size=max(1, rows // k), num_samples=k,
                                      temperature=SAMPLING_TEMPERATURE if k > 1 else 0.0)  # fmt: skip
            return [c for cs in backend.generate(texts, config, ignore_eos=True) for c in cs]

        return run
    if name == "lm-eval":
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        cache: dict[int, HFLM] = {}

        def run(texts, rows, k, new_tokens):
            if k != 1:
                raise ValueError("lm-eval's HF backend has no shared-prefix sampling: compare it at 1 sample/prompt")
            if rows not in cache:
                cache[rows] = lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=rows, max_length=LM_EVAL_MAX_LENGTH)
                lm.generated_lengths = []
                original = lm._model_generate

                def recording(context, *a, **kw):  # to check that every batch ran to the forced length
                    out = original(context, *a, **kw)
                    lm.generated_lengths.append(out.shape[1] - context.shape[1])
                    return out

                lm._model_generate = recording
            lm = cache[rows]
            lm.generated_lengths.clear()
            # min_new_tokens keeps EOS away until the forced length; NEVER is a stop string that never appears
            kwargs = {"until": [NEVER], "max_gen_toks": new_tokens, "do_sample": False, "min_new_tokens": new_tokens}
            requests = [Instance("generate_until", {}, (t, kwargs), i) for i, t in enumerate(texts)]
            outs = lm.generate_until(requests, disable_tqdm=True)
            if set(lm.generated_lengths) != {new_tokens}:
                raise RuntimeError(f"lm-eval generated {lm.generated_lengths} tokens per batch, not {new_tokens}")
            return outs

        return run
    if name == "vllm":
        return make_vllm_runner(model, tokenizer)
    raise ValueError(f"unknown backend {name!r}; choose from {BACKENDS}")


def make_vllm_runner(model, tokenizer):
    """vLLM's offline engine on the same weights. Prompts go in as token ids and outputs come back as ids
    (``detokenize=False``): a random-weight shape's vocabulary is larger than guard_eval's local tokenizer."""
    import tempfile

    from vllm import LLM, SamplingParams

    path = tempfile.mkdtemp(prefix="guard-bench-vllm-")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    start = time.perf_counter()
    llm = LLM(path, enable_prefix_caching=True, dtype=str(model.dtype).removeprefix("torch."), seed=0,
              gpu_memory_utilization=0.5)  # fmt: skip
    print(json.dumps({"backend": "vllm", "engine_start_s": time.perf_counter() - start}), flush=True)

    def run(texts, rows, k, new_tokens):
        temperature = SAMPLING_TEMPERATURE if k > 1 else 0.0
        params = SamplingParams(n=k, temperature=temperature, max_tokens=new_tokens, ignore_eos=True,
                                detokenize=False)  # fmt: skip
        prompts = [{"prompt_token_ids": ids} for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        return [c.token_ids for out in llm.generate(prompts, params, use_tqdm=False) for c in out.outputs]

    return run


# -- measurement -------------------------------------------------------------------------------------------------------


def measure(run, texts, rows, k, output_len) -> tuple[float, float]:
    """Seconds of a run after an identical warm-up run, and of the warm-up.

    The warm-up pays each backend's one-off costs per shape: our CUDA graph captures and compilation, and for
    ``generate``-based backends cuDNN attention plans, one per new KV length (~50-70 ms a step on a cold H100), which
    a long evaluation also amortises."""
    import torch

    start = time.perf_counter()
    run(texts, rows, k, output_len)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    outs = run(texts, rows, k, output_len)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if len(outs) != len(texts) * k:
        raise RuntimeError(f"expected {len(texts) * k} completions, got {len(outs)}")
    return elapsed, warmup


def greedy_agreement(model, tokenizer, texts: list[str], new_tokens: int) -> dict:
    """Greedy token agreement of the fast loop (and its compiled variant, if it ran) with plain ``generate``."""
    import torch

    from guard_eval.generation.hf import HFBackend

    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        plain = model.generate(**enc.to(model.device), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                               do_sample=False, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    plain = plain[:, enc["input_ids"].shape[1] :].cpu()
    decoders = {"fast": BUILT.get("fast") or HFBackend.from_loaded(model, tokenizer)}
    for name in FAST:
        if name not in ("fast", "fast-eager") and name in BUILT:
            decoders[name] = BUILT[name]
    result = {"sequences": len(texts), "new_tokens": new_tokens, "dtype": str(next(model.parameters()).dtype),
              "options": {n: b.decoder.reasons for n, b in decoders.items()}}
    for name, backend in decoders.items():
        fast = backend.decoder.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=new_tokens,
                                        ignore_eos=True)  # fmt: skip
        same = fast == plain
        prefix = [int(row.int().cumprod(0).sum()) for row in same]  # identical tokens before the first difference
        result[name] = {"identical_sequences": int(same.all(1).sum()), "mean_identical_prefix": statistics.mean(prefix),
                        "token_agreement": float(same.float().mean())}  # fmt: skip
    sample = lambda seed: decoders["fast"].decoder.generate(
        enc["input_ids"], enc["attention_mask"], max_new_tokens=new_tokens, num_samples=2, temperature=1.0, seed=seed)
    a, b, c = sample(1), sample(1), sample(2)
    result["sampling_same_seed_equal"] = bool(torch.equal(a, b))
    result["sampling_other_seed_differs"] = not torch.equal(a, c)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="random-weight model shape")
    src.add_argument("--model", help="a checkpoint dir instead of a random shape")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64], help="decode rows per batch")
    p.add_argument("--batches", type=int, default=1, help="batches per measurement (prompts = rows * batches / k)")
    p.add_argument("--output-len", type=int, default=256, help="forced new tokens per completion")
    p.add_argument("--num-samples", type=int, nargs="+", default=[1], help="completions per prompt (k)")
    p.add_argument("--backends", nargs="+", default=["fast", "lm-eval"], choices=BACKENDS)
    p.add_argument("--baseline", default="lm-eval", help="the backend the ratio column divides by")
    p.add_argument("--baseline-batch-sizes", type=int, nargs="*", help="run non-fast backends only at these sizes")
    p.add_argument("--check", type=int, default=0, help="also compare N greedy sequences with plain generate")
    p.add_argument("--device", help="default: cuda if available")
    p.add_argument("--dtype", help="default: bfloat16 on GPU, float32 on CPU")
    p.add_argument("--json", help="write the rows and the machine description here")
    p.add_argument("--workdir", default="/tmp/guard-bench-throughput")
    args = p.parse_args(argv)

    import torch

    from guard_eval.modeling import load_model, load_tokenizer

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if args.model:
        model, tokenizer = load_model(args.model, device=device, dtype=dtype), load_tokenizer(args.model)
        shape = Path(args.model).name
    else:
        model, tokenizer = load_shape(args.shape, device, dtype, Path(args.workdir))
        shape = args.shape
    bandwidth = copy_bandwidth(device)
    wbytes = weight_bytes(model)
    kv_token = kv_bytes_per_token(model.config, next(model.parameters()).element_size())
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu"
    info = {"shape": shape, "params": sum(p.numel() for p in model.parameters()), "dtype": dtype, "device": gpu,
            "copy_bandwidth_GBps": bandwidth / 1e9, "weight_bytes": wbytes, "kv_bytes_per_token": kv_token,
            "torch": torch.__version__, "transformers": __import__("transformers").__version__}  # fmt: skip
    print(json.dumps(info), flush=True)

    rows_out = []
    runners = {}
    for rows in args.batch_sizes:
        for k in args.num_samples:
            if rows % k:
                continue
            texts = guard_items(rows // k * args.batches, tokenizer)
            prompt_tokens = statistics.mean(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
            for name in args.backends:
                baseline_only = args.baseline_batch_sizes is not None and rows not in args.baseline_batch_sizes
                if not name.startswith("fast") and (baseline_only or (name == "lm-eval" and k != 1)):
                    continue
                if name not in runners:
                    runners[name] = make_runner(name, model, tokenizer)
                try:
                    seconds, warmup_s = measure(runners[name], texts, rows, k, args.output_len)
                except Exception as e:  # noqa: BLE001 -- one failing backend must not lose the other rows
                    print(f"{name} rows={rows} k={k} failed: {type(e).__name__}: {e}", flush=True)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                completions = len(texts) * k
                tokens = completions * args.output_len
                bound = rows * bandwidth / wbytes  # tokens/s if a step only read the weights at copy speed
                kv_read = rows * (prompt_tokens + args.output_len / 2) * kv_token  # mean KV bytes a step reads
                decoder = getattr(BUILT.get(name), "decoder", None)
                row = {"backend": name, "rows": rows, "options": decoder.reasons if decoder is not None else None,
                       "num_samples": k, "prompts": len(texts),
                       "prompt_tokens_mean": prompt_tokens, "output_len": args.output_len, "seconds": seconds,
                       "tokens_per_s": tokens / seconds, "samples_per_s": completions / seconds,
                       "ms_per_step": 1e3 * seconds / (args.batches * args.output_len), "warmup_s": warmup_s,
                       "bandwidth_bound_tokens_per_s": bound, "fraction_of_bound": tokens / seconds / bound,
                       "fraction_of_bound_with_kv": tokens / seconds / (rows * bandwidth / (wbytes + kv_read))}  # fmt: skip
                rows_out.append(row)
                print(json.dumps(row), flush=True)
                save(args.json, info, rows_out, args.baseline, None)  # after every row: a crash keeps the rest
    check = None
    if args.check:
        texts = guard_items(args.check, tokenizer)
        check = greedy_agreement(model, tokenizer, texts, min(args.output_len, 64))
        print("greedy agreement with generate:", json.dumps(check), flush=True)
    save(args.json, info, rows_out, args.baseline, check)
    print_table(info, rows_out, args.baseline)
    return 0


def save(path: str | None, info: dict, rows: list[dict], baseline: str, check: dict | None) -> None:
    for row in rows:
        base = [r for r in rows if r["backend"] == baseline and r["rows"] == row["rows"]]
        row[f"x_{baseline}"] = row["tokens_per_s"] / base[0]["tokens_per_s"] if base else None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"machine": info, "rows": rows, "greedy_check": check}, indent=2))


def print_table(info: dict, rows: list[dict], baseline: str) -> None:
    print(f"\n{info['shape']} ({info['params'] / 1e9:.3f}B params, {info['dtype']}) on {info['device']}, "
          f"copy bandwidth {info['copy_bandwidth_GBps']:.0f} GB/s")  # fmt: skip
    head = ["backend", "rows", "k", "prompt tok", "out len", "tok/s", "samples/s", "ms/step", f"x {baseline}",
            "% bound", "% bound+KV"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        ratio = r[f"x_{baseline}"]
        cells = [r["backend"], r["rows"], r["num_samples"], f"{r['prompt_tokens_mean']:.0f}", r["output_len"],
                 f"{r['tokens_per_s']:,.0f}", f"{r['samples_per_s']:.1f}", f"{r['ms_per_step']:.2f}",
                 f"{ratio:.1f}" if ratio else "-", f"{100 * r['fraction_of_bound']:.0f}",
                 f"{100 * r['fraction_of_bound_with_kv']:.0f}"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
