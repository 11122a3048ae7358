#!/usr/bin/env python
"""Several GPUs (issue 16): data-parallel ``guard-eval run`` and FSDP SFT on 1 vs N processes, measured side by side.

``eval``: the same model and items through ``guard-eval run`` in one process and through
``accelerate launch --multi_gpu --num_processes N -m guard_eval.cli run``: samples/s, scaling efficiency, and whether
the merged results equal the one-process run (texts, verdicts, metrics). Then a fresh N-process run in which one rank
is killed (SIGKILL) once its shard holds some records, and the same command re-run: the merged result must hold every
sample exactly once and equal the one-process run.

``sft``: ``guard-train sft`` full fine-tuning through ``accelerate launch`` with an accelerate config (FSDP by default)
on 1 and N processes at the same global batch (per-device batch x accumulation x processes): steps/s, tokens/s (TRL's
``num_tokens``, gathered over ranks), peak GPU memory of rank 0, and the loss curve; optionally with
``use_liger_kernel``.

``dpo``: ``guard-train dpo``, full fine-tuning against a frozen copy (``lora=false``; ``--lora``: an adapter, the
reference being the weights with it disabled), in the same way, on pairs made
from the SFT traces: chosen = the trace, rejected = the same trace with its answers flipped (harmful <-> unharmful,
refusal <-> compliance): real lengths and prompts, for measuring speed and memory, not a training recipe.

``--cpu-smoke`` runs them on CPU with the tiny model (DDP over gloo instead of FSDP), to test this script.

    python benchmarks/multi_gpu.py eval --model /tmp/llama-1b --benchmarks aegis harmbench_prompt --processes 2 \\
        --json out/eval.json
    python benchmarks/multi_gpu.py sft --model /tmp/llama-1b --processes 2 --max-steps 8 --json out/sft.json
    python benchmarks/multi_gpu.py dpo --model /tmp/llama-1b --processes 1 --accelerate-config "" --liger
    python benchmarks/multi_gpu.py eval --cpu-smoke --json /tmp/eval-smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# NVLink multicast stays off on shared hosts (device notes); harmless elsewhere.
SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


RUNNING: set[int] = set()  # process groups of launched commands, killed if this script is stopped


def _stop(signum, frame):  # a SIGTERM (e.g. from `timeout`) must not leave launched workers holding the GPUs
    for pgid in list(RUNNING):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise SystemExit(128 + signum)


def base_env(extra: dict | None = None) -> dict:
    env = {**os.environ, **SAFE_ENV, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    return {**env, **(extra or {})}


def free_port() -> int:
    """A TCP port nothing listens on now (other jobs on the host may use the usual 29500-range ports)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(processes: int, port: int, config: str | None = None, cpu: bool = False) -> list[str]:
    """``accelerate launch`` for ``processes`` workers on this host (torchrun underneath, also on CPU); one process
    without a config file is a plain ``python`` (accelerate's ``--multi_gpu`` wants two or more)."""
    if processes == 1 and not config:
        return [sys.executable]
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config:
        cmd += ["--config_file", config]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    port = port or free_port()
    return cmd + ["--num_processes", str(processes), "--num_machines", "1", "--main_process_port", str(port)]


def run_logged(cmd: list[str], env: dict, log: Path, timeout: float) -> tuple[int, float]:
    """(return code, seconds) of ``cmd`` with its output in ``log``; 124 on timeout."""
    start = time.perf_counter()
    with log.open("w") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        RUNNING.add(proc.pid)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = 124
        finally:
            RUNNING.discard(proc.pid)
    return rc, time.perf_counter() - start


def tail(log: Path, n: int = 2000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else ""


# -- evaluation --------------------------------------------------------------------------------------------------------


def eval_args(args, output: Path) -> list[str]:
    cmd = ["-m", "guard_eval.cli", "run", "--model", args.model, "--benchmarks", *args.benchmarks,
           "--output", str(output), "--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.batch_size),
           "--no-progress"]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    for option in args.backend_option or []:
        cmd += ["--backend-option", option]
    return cmd


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def worker_pid(tag: str, rank: int) -> int | None:
    """The pid of the ``guard_eval.cli`` worker of ``rank`` started with ``GUARD_BENCH_RUN_TAG=tag`` (Linux /proc)."""
    want = {f"GUARD_BENCH_RUN_TAG={tag}".encode(), f"RANK={rank}".encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if b"guard_eval.cli" in cmdline and want <= environ:
            return int(entry.name)
    return None


def kill_rank_midway(cmd: list[str], env: dict, shard_dir: Path, rank: int, min_records: int, log: Path,
                     timeout: float) -> dict:  # fmt: skip
    """Start ``cmd``; once ``shard_dir`` holds ``min_records`` records, SIGKILL ``rank``'s worker; wait for the launcher."""
    tag = uuid.uuid4().hex
    env = {**env, "GUARD_BENCH_RUN_TAG": tag}
    start = time.perf_counter()
    samples = shard_dir / "samples.jsonl"
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        RUNNING.add(proc.pid)
        killed_at, pid = None, None
        while proc.poll() is None and time.perf_counter() - start < timeout:
            if count_lines(samples) >= min_records:
                pid = worker_pid(tag, rank)
                if pid:
                    killed_at = count_lines(samples)
                    os.kill(pid, signal.SIGKILL)
                    break
            time.sleep(0.02)
        try:
            rc = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        RUNNING.discard(proc.pid)
    results = shard_dir / "results.json"
    complete = json.loads(results.read_text()).get("complete") if results.exists() else None
    return {"killed_pid": pid, "records_when_killed": killed_at, "launcher_rc": rc,
            "shard_complete_after_kill": complete, "records_after_kill": count_lines(samples),
            "seconds": time.perf_counter() - start}  # fmt: skip


def read_run(output: Path) -> dict:
    """Records keyed by (benchmark, id, sample) and the per-benchmark metrics of a (merged) run dir."""
    from guard_eval.results.rundir import read_records

    records = read_records(output / "samples.jsonl")
    keyed: dict = {}
    duplicates = 0
    for r in records:
        key = (r["benchmark"], r["id"], r.get("sample"))
        duplicates += key in keyed
        keyed[key] = r
    results = json.loads((output / "results.json").read_text()) if (output / "results.json").exists() else {}
    return {"records": keyed, "n_records": len(records), "duplicates": duplicates, "results": results}


METRICS = ("n", "f1", "accuracy", "precision", "recall", "parse_failures")


def compare_runs(reference: Path, other: Path) -> dict:
    """How far ``other`` (a merged run) is from ``reference``: missing/extra/duplicate samples, equal texts, verdicts
    and metrics."""
    a, b = read_run(reference), read_run(other)
    common = a["records"].keys() & b["records"].keys()
    same_text = sum(a["records"][k]["output"] == b["records"][k]["output"] for k in common)
    same_pred = sum(a["records"][k]["pred"] == b["records"][k]["pred"] for k in common)
    ma, mb = a["results"].get("benchmarks", {}), b["results"].get("benchmarks", {})
    metrics_equal = ma.keys() == mb.keys() and all(ma[n].get(m) == mb[n].get(m) for n in ma for m in METRICS)
    return {"reference_samples": len(a["records"]), "samples": len(b["records"]),
            "missing": len(a["records"].keys() - b["records"].keys()), "extra": len(b["records"].keys() - a["records"].keys()),
            "duplicates": b["duplicates"], "identical_outputs": same_text, "identical_verdicts": same_pred,
            "metrics_equal": metrics_equal, "complete": b["results"].get("complete"),
            "identical": same_text == len(a["records"]) == len(b["records"]) and b["duplicates"] == 0 and metrics_equal}  # fmt: skip


def dump(args, result: dict) -> None:
    """Write what is measured so far: a run stopped by its time limit keeps the finished parts."""
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


def eval_span(output: Path) -> float | None:
    """Seconds from the first shard's start of evaluation (model loaded) to the last shard's final write, from the
    ``created``/``updated`` stamps of their results.json (1 s resolution): the run without start-up and loading."""
    from datetime import datetime

    dirs = sorted(output.glob("shard-*-of-*")) or [output]
    try:
        stamps = [json.loads((d / "results.json").read_text()) for d in dirs]
        start = min(datetime.fromisoformat(r["created"]) for r in stamps)
        return (max(datetime.fromisoformat(r["updated"]) for r in stamps) - start).total_seconds()
    except (OSError, KeyError, ValueError):
        return None


def eval_scaling(args) -> dict:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    env = base_env({"OMP_NUM_THREADS": "1"} if args.cpu_smoke else None)
    out: dict = {"model": args.model, "benchmarks": args.benchmarks, "max_new_tokens": args.max_new_tokens,
                 "batch_size": args.batch_size, "processes": args.processes}  # fmt: skip
    runs = {}
    single, multi, resumed = work / "eval-1", work / f"eval-{args.processes}", work / f"eval-{args.processes}-killed"
    for d in (single, multi, resumed):
        shutil.rmtree(d, ignore_errors=True)  # a leftover would be resumed, not measured
    rc, seconds = run_logged([sys.executable, *eval_args(args, single)], env, work / "eval-1.log", args.timeout)
    runs[1] = {"rc": rc, "seconds": seconds}
    if rc != 0:
        raise RuntimeError(f"1-process eval failed (rc {rc}):\n{tail(work / 'eval-1.log')}")
    n_samples = read_run(single)["n_records"]
    runs[1].update(samples_per_s=n_samples / seconds, eval_seconds=eval_span(single))
    print(f"eval 1 process: {n_samples} samples in {seconds:.1f} s", flush=True)
    out["runs"] = {"1": runs[1]}
    dump(args, out)
    cmd = launcher(args.processes, args.port, cpu=args.cpu_smoke) + eval_args(args, multi)
    rc, seconds = run_logged(cmd, env, work / f"eval-{args.processes}.log", args.timeout)
    runs[args.processes] = {"rc": rc, "seconds": seconds}
    if rc == 0:
        span, span1 = eval_span(multi), runs[1]["eval_seconds"]
        runs[args.processes].update(samples_per_s=n_samples / seconds, speedup=runs[1]["seconds"] / seconds,
                                    eval_seconds=span, eval_speedup=span1 / span if span and span1 else None,
                                    efficiency=runs[1]["seconds"] / seconds / args.processes,
                                    compare=compare_runs(single, multi))  # fmt: skip
        print(f"eval {args.processes} processes: {seconds:.1f} s, speedup {runs[1]['seconds'] / seconds:.2f}x, "
              f"vs 1 process: {runs[args.processes]['compare']}", flush=True)  # fmt: skip
    else:
        print(f"eval {args.processes} processes failed (rc {rc}):\n{tail(work / f'eval-{args.processes}.log')}")
    out["runs"] = {str(k): v for k, v in runs.items()}
    dump(args, out)
    if not args.skip_kill:
        cmd = launcher(args.processes, args.port and args.port + 1, cpu=args.cpu_smoke) + eval_args(args, resumed)
        victim = args.processes - 1
        kill = kill_rank_midway(cmd, env, resumed / f"shard-{victim}-of-{args.processes}", victim, args.kill_after,
                                work / "eval-killed.log", args.timeout)  # fmt: skip
        print(f"kill rank {victim}: {kill}", flush=True)
        out["kill_and_resume"] = kill
        dump(args, out)
        rc, seconds = run_logged(cmd, env, work / "eval-resumed.log", args.timeout)
        kill.update(rerun_rc=rc, rerun_seconds=seconds)
        if rc == 0:
            kill["compare"] = compare_runs(single, resumed)
        else:
            print(f"rerun failed (rc {rc}):\n{tail(work / 'eval-resumed.log')}")
        out["kill_and_resume"] = kill
        print(f"after rerun: {kill.get('compare')}", flush=True)
    return out


# -- training ----------------------------------------------------------------------------------------------------------


FLIPS = {"unharmful": "harmful", "harmful": "unharmful", "refusal": "compliance", "compliance": "refusal"}


def flipped_answers(trace: str) -> str:
    """``trace`` with its answer lines (``Request: harmful`` ...) flipped, the reasoning before them kept."""
    import re

    flipped, n = re.subn(r"(?m)^(\s*(?:Request|Completion|Response)\s*:\s*)(unharmful|harmful|refusal|compliance)\b",
                         lambda m: m.group(1) + FLIPS[m.group(2)], trace)  # fmt: skip
    if not n:
        raise ValueError(f"trace has no answer lines to flip: {trace[-200:]!r}")
    return flipped


def flip_pairs(args) -> Path:
    """DPO pairs from the SFT traces (``--sft-data``): chosen = the trace, rejected = its answers flipped."""
    from guard_eval.results.rundir import write_records
    from guard_train.data import load_traces
    from guard_train.prefs import as_turn

    path = Path(args.workdir) / "flip-pairs.jsonl"
    write_records(path, ({"prompt": ex.prompt, "chosen": as_turn(ex.prompt, ex.completion),
                          "rejected": as_turn(ex.prompt, flipped_answers(ex.completion))}
                         for ex in load_traces([args.sft_data], args.data_dir)))  # fmt: skip
    return path


def train_run(args, data: str | Path, processes: int, liger: bool, port: int, sets: tuple[str, ...] = ()) -> dict:
    work = Path(args.workdir)
    settings = [v if v != "true" else k for k, _, v in (s.partition("=") for s in sets)]  # padding_free, flex_attention
    name = "-".join([args.what, str(processes), *(["liger"] if liger else []), *settings])
    output = work / name
    accumulation = args.global_batch // (args.per_device_batch * processes)
    if accumulation < 1 or accumulation * args.per_device_batch * processes != args.global_batch:
        raise ValueError(f"global batch {args.global_batch} is not per-device {args.per_device_batch} x {processes} x k")
    config = None if args.cpu_smoke else args.accelerate_config or None
    cmd = launcher(processes, port, config=config, cpu=args.cpu_smoke)
    cmd += ["-m", "guard_train.cli", args.what, "--config", str(ROOT / f"configs/{args.what}.yaml"),
            "--set", f"model={args.model}", "--set", f"output_dir={output}", "--set", "overwrite=true",
            "--set", f"lora={'true' if args.lora else 'false'}", "--set", "merge=false",
            "--set", f"max_steps={args.max_steps}",
            "--set", "logging_steps=1", "--set", f"max_length={args.max_length}",
            "--set", f"per_device_train_batch_size={args.per_device_batch}",
            "--set", f"gradient_accumulation_steps={accumulation}", "--set", f"data={data}",
            "--set", f"use_liger_kernel={'true' if liger else 'false'}"]  # fmt: skip
    cmd += [arg for s in sets for arg in ("--set", s)]
    if args.data_dir and args.what == "sft":  # dpo's pairs file was made here, reading it
        cmd += ["--set", f"data_dir={args.data_dir}"]
    env = base_env({"OMP_NUM_THREADS": "1"} if args.cpu_smoke else None)
    rc, seconds = run_logged(cmd, env, work / f"{name}.log", args.timeout)
    row = {"processes": processes, "liger": liger, "sets": list(sets), "per_device_batch": args.per_device_batch,
           "gradient_accumulation": accumulation, "global_batch": args.global_batch, "rc": rc, "wall_s": seconds}  # fmt: skip
    if rc != 0:
        row["error"] = tail(work / f"{name}.log")
        row["error_line"] = next((ln.strip() for ln in reversed((work / f"{name}.log").read_text(errors="replace")
                                  .splitlines()) if "error:" in ln.lower() and "ChildFailedError" not in ln), "")  # fmt: skip
        print(f"{name} failed (rc {rc}):\n{row['error']}", flush=True)
        return row
    m = json.loads((output / "guard_bench.json").read_text())["metrics"]
    logs = m.get("log_history", [])
    tokens = max((h.get("num_tokens", 0) for h in logs), default=0)
    runtime = m.get("train_runtime_s") or float("nan")
    row.update(steps=m.get("steps"), steps_per_s=m.get("steps_per_s"), train_runtime_s=runtime,
               tokens=tokens, tokens_per_s=tokens / runtime if tokens else None,
               gpu_peak_allocated_gib=(m.get("gpu_peak_allocated_mib") or 0) / 1024 or None,
               peak_rss_gib=m.get("peak_rss_mib", 0) / 1024, losses=[h["loss"] for h in logs if "loss" in h])  # fmt: skip
    print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'losses'})}", flush=True)
    return row


def train_scaling(args) -> dict:
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    variants = [(1, False, ()), (args.processes, False, ())]
    if args.liger:
        variants += [(1, True, ()), (args.processes, True, ())]
    variants += [(1, False, tuple(v.split(","))) for v in args.variant or ()]
    variants = list(dict.fromkeys(variants))  # --processes 1: each variant once
    data = args.sft_data if args.what == "sft" else flip_pairs(args)  # one pairs file for every variant
    rows = []
    result = {"model": args.model, "data": args.sft_data, "max_length": args.max_length, "lora": args.lora,
              "rows": rows}
    for i, (processes, liger, sets) in enumerate(variants):
        what = f"{args.what} {processes} processes liger={liger} {' '.join(sets)}".rstrip()
        if args.deadline and time.time() > args.deadline:
            print(f"{what}: skipped, past the deadline", flush=True)
            continue
        try:
            rows.append(train_run(args, data, processes, liger, args.port and args.port + 10 + i, sets))
        except Exception as e:  # noqa: BLE001 -- one failing variant must not lose the others
            print(f"{what} failed: {type(e).__name__}: {e}", flush=True)
            rows.append({"processes": processes, "liger": liger, "sets": list(sets), "error": f"{type(e).__name__}: {e}"})
        dump(args, result)
    for row in rows:  # against 1 process with the same Liger setting and no --variant sets
        base = next((r for r in rows if r.get("processes") == 1 and r.get("liger") == row.get("liger")
                     and not r.get("sets")), None)  # fmt: skip
        if base and base.get("steps_per_s") and row.get("steps_per_s"):
            row["speedup"] = row["steps_per_s"] / base["steps_per_s"]
            row["efficiency"] = row["speedup"] / row["processes"]
    return result


# -- command line ------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["eval", "sft", "dpo"])
    p.add_argument("--model", help="checkpoint dir (default with --cpu-smoke: a tiny model built in the workdir)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--cpu-smoke", action="store_true", help="CPU, tiny model, DDP over gloo: tests this script")
    p.add_argument("--workdir", default="/tmp/guard-bench-multi-gpu")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--port", type=int, default=0, help="first rendezvous port (default: a free port per launch)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per launched command")
    p.add_argument("--data-dir", help="GUARD_DATA_DIR for benchmarks and traces")
    # eval
    p.add_argument("--benchmarks", nargs="+", default=["demo"])
    p.add_argument("--limit", type=int)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backend-option", action="append")
    p.add_argument("--skip-kill", action="store_true")
    p.add_argument("--kill-after", type=int, default=8, help="records in the victim's shard before it is killed")
    # sft, dpo
    p.add_argument("--sft-data", default="synthetic:demo")
    p.add_argument("--accelerate-config", default=str(ROOT / "configs/accelerate/fsdp.yaml"),
                   help='"" for a plain process (1 GPU)')
    p.add_argument("--global-batch", type=int, default=32)
    p.add_argument("--per-device-batch", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--liger", action="store_true", help="also run with use_liger_kernel")
    p.add_argument("--variant", action="append", metavar="KEY=VALUE[,KEY=VALUE]",
                   help="also run on 1 process with these config settings, e.g. padding_free=true,"
                   "attn_implementation=flex_attention (repeatable)")  # fmt: skip
    p.add_argument("--lora", action="store_true",
                   help="train a LoRA adapter (guard-train's default) instead of all weights")
    p.add_argument("--deadline", type=float, help="unix time after which no further variant starts")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    if args.cpu_smoke and not args.model:
        from guard_eval.tiny import build_tiny_model

        args.model = str(build_tiny_model(Path(args.workdir) / "tiny"))
    if not args.model:
        p.error("--model is required (or --cpu-smoke)")
    dump(args, eval_scaling(args) if args.what == "eval" else train_scaling(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
