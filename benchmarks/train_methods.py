#!/usr/bin/env python
"""Steps/s and peak memory of every training method on the tiny model (the ``configs/*-tiny.yaml`` chain).

Each method runs in its own process (``guard-train METHOD --config configs/METHOD-tiny.yaml``, so that the process
peak RSS is that method's), in dependency order: sft -> prefs -> dpo, grpo, refine. The numbers come from each
output's ``guard_bench.json``; the table goes to stdout (Markdown) and, with ``--json``, to a file.

    python benchmarks/train_methods.py --json benchmarks/results/cpu-train-methods.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("sft", "prefs", "dpo", "grpo", "refine")


def run_method(method: str, workdir: Path) -> dict:
    out = workdir / method
    config = ROOT / "configs" / f"{method}-tiny.yaml"
    sets = [f"output_dir={out}", "overwrite=true"]
    if method != "sft":
        sets.append(f"model={workdir / 'sft'}")
    if method == "dpo":
        sets.append(f"data={workdir / 'prefs' / 'pairs.jsonl'}")
    cmd = [sys.executable, "-m", "guard_train.cli", method, "--config", str(config)]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    wall = time.perf_counter() - start
    meta = json.loads((out / "guard_bench.json").read_text())
    m = {k: v for k, v in meta["metrics"].items() if k not in ("log_history", "rounds")}
    return {"method": method, "process_wall_s": round(wall, 1), **m}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="runs/bench-train")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    workdir = (ROOT / args.workdir).resolve()
    rows = [run_method(m, workdir) for m in args.methods]
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print("| method | steps | steps/s | train time (s) | process wall (s) | peak RSS (MiB) | other |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        other = f"{r['completions_per_s']} completions/s" if "completions_per_s" in r else ""
        print(f"| {r['method']} | {r.get('steps', '-')} | {r.get('steps_per_s', '-')} | "
              f"{r.get('train_runtime_s', r.get('wall_s'))} | {r['process_wall_s']} | {r['peak_rss_mib']:.0f} | {other} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
