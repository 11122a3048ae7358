"""The probe behind prefill-chunks.log: prefill time of the fast loop by prefill chunk size (run from the repo root
with PYTHONPATH=.:benchmarks; the same 1B shape and prompts as generation_throughput.py)."""
import sys, time, torch
from pathlib import Path
sys.path.insert(0, "benchmarks")
from generation_throughput import guard_items, load_shape
from guard_eval.generation.fast_decode import StaticDecoder
from guard_eval.generation.hf import eos_token_ids

model, tok = load_shape("llama-3.2-1b", "cuda", "bfloat16", Path("/tmp/gb-scratch"))
for rows in (64, 256):
    texts = sorted(guard_items(rows * 2, tok), key=len)[rows:]  # the longer half, as the backend's first batch
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    for chunk in (32768, 16384, 8192):
        d = StaticDecoder(model, pad_token_id=tok.pad_token_id, eos_token_ids=eos_token_ids(model, tok), prefill_tokens=chunk)
        times = []
        for _ in range(4):
            torch.cuda.synchronize(); s = time.perf_counter()
            d.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=1)
            torch.cuda.synchronize(); times.append(time.perf_counter() - s)
        real = int(enc["attention_mask"].sum())
        print(f"rows={rows} L={enc['input_ids'].shape[1]} real={real} prefill_tokens={chunk}: {1e3*min(times[1:]):.1f} ms", flush=True)
