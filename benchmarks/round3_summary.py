#!/usr/bin/env python
"""The compact tables of ``benchmarks/run_gpu_round3.sh``: reads gen.json, genfp32.json, eval.json and sft.json from
OUT_DIR (any may be missing: a failed part is reported as such) and prints Markdown.

    python benchmarks/round3_summary.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(out: Path, name: str) -> dict | None:
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None


def table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def generation(out: Path) -> str:
    gen = load(out, "gen.json")
    if not gen:
        return "## Generation\nno gen.json (the part failed: see logs.tgz gen.log)"
    m = gen["machine"]
    text = [f"## Generation: {m['shape']} ({m['params'] / 1e9:.3f}B, {m['dtype']}) on {m['device']}, "
            f"copy bandwidth {m['copy_bandwidth_GBps']:.0f} GB/s"]  # fmt: skip
    rows = [[r["backend"], r["rows"], f"{r['tokens_per_s']:,.0f}", f"{r['ms_per_step']:.2f}",
             f"{r['x_generate']:.1f}" if r.get("x_generate") else "-", pct(r["fraction_of_bound"]),
             pct(r["fraction_of_bound_with_kv"]), f"{r['warmup_s']:.1f}", r.get("fused_kernels") or "-"]
            for r in gen["rows"]]  # fmt: skip
    text.append(table(["backend", "rows", "tok/s", "ms/step", "x generate", "% bound", "% bound+KV", "warm-up s",
                       "fused kernels"], rows))  # fmt: skip
    for name, data in (("gen.json", gen), ("genfp32.json", load(out, "genfp32.json"))):
        check = (data or {}).get("greedy_check")
        if not check:
            text.append(f"greedy check {name}: missing")
            continue
        parts = [f"{b}: {c['identical_sequences']}/{check['sequences']} identical, mean identical prefix "
                 f"{c['mean_identical_prefix']:.1f}/{check['new_tokens']}, token agreement {100 * c['token_agreement']:.1f}%"
                 for b, c in check.items() if isinstance(c, dict) and "identical_sequences" in c]  # fmt: skip
        text.append(f"greedy vs generate ({name}, {check.get('dtype')}): " + "; ".join(parts)
                    + f"; sampling reproducible: {check.get('sampling_same_seed_equal')}")  # fmt: skip
    return "\n\n".join(text)


def evaluation(out: Path) -> str:
    ev = load(out, "eval.json")
    if not ev:
        return "## Data-parallel eval\nno eval.json (see logs.tgz)"
    rows = []
    for n, r in sorted(ev.get("runs", {}).items(), key=lambda kv: int(kv[0])):
        c = r.get("compare") or {}
        rows.append([n, r.get("rc"), f"{r['seconds']:.1f}", f"{r['samples_per_s']:.1f}" if r.get("samples_per_s") else "-",
                     f"{r['speedup']:.2f}" if r.get("speedup") else "1.00" if n == "1" else "-",
                     pct(r.get("efficiency")) if n != "1" else "100",
                     f"{r['eval_seconds']:.0f}" if r.get("eval_seconds") else "-",
                     f"{r['eval_speedup']:.2f}" if r.get("eval_speedup") else "1.00" if n == "1" else "-",
                     c.get("identical", "ref" if n == "1" else "-"),
                     f"{c['identical_outputs']}/{c['reference_samples']}" if c else "-",
                     f"{c['identical_verdicts']}/{c['reference_samples']}" if c else "-",
                     c.get("metrics_equal", "-")])  # fmt: skip
    text = [f"## Data-parallel eval: {' '.join(ev['benchmarks'])}, {ev['max_new_tokens']} new tokens, batch "
            f"{ev['batch_size']}",  # fmt: skip
            table(["processes", "rc", "wall s", "samples/s", "speedup", "efficiency %", "eval s (no start-up)",
                   "speedup (no start-up)", "identical", "same outputs",
                   "same verdicts", "metrics equal"], rows)]  # fmt: skip
    kill = ev.get("kill_and_resume")
    if kill:
        c = kill.get("compare") or {}
        text.append(f"kill rank {ev['processes'] - 1} at {kill.get('records_when_killed')} records of its shard "
                    f"(launcher rc {kill.get('launcher_rc')}, shard complete after kill: {kill.get('shard_complete_after_kill')}); "
                    f"rerun rc {kill.get('rerun_rc')} in {kill.get('rerun_seconds', 0):.1f} s: samples {c.get('samples')}/"
                    f"{c.get('reference_samples')}, missing {c.get('missing')}, extra {c.get('extra')}, duplicates "
                    f"{c.get('duplicates')}, identical to 1 process: {c.get('identical')}")  # fmt: skip
    return "\n\n".join(text)


def training(out: Path) -> str:
    sft = load(out, "sft.json")
    if not sft:
        return "## FSDP SFT\nno sft.json (see logs.tgz)"
    rows = []
    for r in sft["rows"]:
        if r.get("rc") != 0:
            rows.append([r.get("processes"), r.get("liger"), "FAILED: " + (r.get("error_line") or "?")[:120], "", "", "",
                         "", "", "", ""])  # fmt: skip
            continue
        losses = r.get("losses") or []
        rows.append([r["processes"], r["liger"], f"{r['per_device_batch']} x {r['gradient_accumulation']} x {r['processes']}",
                     f"{r['steps_per_s']:.3f}" if r.get("steps_per_s") else "-",
                     f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "-",
                     f"{r['speedup']:.2f}" if r.get("speedup") else "-", pct(r.get("efficiency")),
                     f"{r['gpu_peak_allocated_gib']:.1f}" if r.get("gpu_peak_allocated_gib") else "-",
                     " ".join(f"{x:.3f}" for x in losses), f"{r['wall_s']:.0f}"])  # fmt: skip
    head = ["GPUs", "liger", "batch x accum x GPUs", "steps/s", "tokens/s", "speedup", "efficiency %",
            "peak GiB (rank 0)", "loss per step", "wall s"]  # fmt: skip
    return f"## FSDP SFT: {sft['data']}, max_length {sft['max_length']}\n\n" + table(head, rows)


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:])[0])
    print("\n\n".join([generation(out), evaluation(out), training(out)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
