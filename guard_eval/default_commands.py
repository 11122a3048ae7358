"""Built-in ``guard-eval`` commands: benchmarks, plugins, score, run, merge, tiny-model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from guard_eval.hookspecs import hookimpl
from guard_eval.results.renderers import markdown_table
from guard_eval.results.rundir import drop_replaced, set_aside


def cmd_benchmarks(args: argparse.Namespace) -> int:
    from guard_eval.benchmarks import BenchmarkDataError, resolve_data_dir
    from guard_eval.default_benchmarks import SUITES
    from guard_eval import plugins

    owners = plugins.get_plugin_manager().owners("guard_register_benchmarks")
    rows = []
    for name, b in sorted(plugins.benchmarks().items(), key=lambda kv: (kv[1].task.value, kv[0])):
        if args.count:
            try:
                count = str(len(b.load(args.data_dir, source="local")))
            except BenchmarkDataError:
                count = "missing"
        else:
            count = str(b.expected_count or "")
        path = b.local_path(args.data_dir)
        where = "embedded" if b.embedded else ("found" if path and path.exists() else ("hub" if b.hub else "missing"))
        rows.append([name, b.task.value, b.title, count, where, owners.get(name, "?")])
    print(markdown_table(["benchmark", "task", "title", "samples", "data", "plugin"], rows))
    root = resolve_data_dir(args.data_dir)
    print(f"\ndata dir: {root or 'none found (pass --data-dir or set $GUARD_DATA_DIR)'}")
    print("\nsuites: " + "; ".join(f"{k} ({len(v)})" for k, v in SUITES.items()))
    return 0


def cmd_lm_eval_path(args: argparse.Namespace) -> int:
    from guard_eval.lm_eval_tasks import lm_eval_path

    print(lm_eval_path(available=args.available))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from guard_eval.plugins import get_plugin_manager

    pm = get_plugin_manager()
    hooks = [h for h in dir(pm.hook) if h.startswith("guard_register_") and h != "guard_register_commands"]
    provided: dict[str, list[str]] = {}
    for hook in hooks:
        for plugin, item in pm.collect(hook):
            provided.setdefault(plugin, []).append(f"{hook.removeprefix('guard_register_')}:{getattr(item, 'name', '?')}")
    report = [
        {"name": name, "source": pm.sources.get(name, "?"), "provides": provided.get(name, [])}
        for name, _ in pm.list_name_plugin()
    ]
    if args.json:
        print(json.dumps({"plugins": report, "errors": [str(e) for e in pm.errors]}, indent=2))
    else:
        for p in report:
            print(f"{p['name']}  ({p['source']})")
            for item in p["provides"]:
                print(f"    {item}")
        for e in pm.errors:
            print(f"ERROR: {e}", file=sys.stderr)
    return 1 if pm.errors else 0


def cmd_score(args: argparse.Namespace) -> int:
    from guard_eval.consistency import contradicts
    from guard_eval.metrics import binary_metrics, consistency_metrics
    from guard_eval.reference_scoring import reference_f1
    from guard_eval.results.rundir import read_records
    from guard_eval.verdict import TaskType, normalize_label, parse_verdict

    task = TaskType(args.task)
    results = {}
    for path in map(Path, args.predictions):
        if not path.exists():
            raise FileNotFoundError(f"predictions file not found: {path}")
        rows = read_records(path, strict=True)  # a file made elsewhere: no line may be dropped
        if not rows:
            raise ValueError(f"{path}: no records (empty file)")
        gold, pred, outputs = [], [], []
        for i, row in enumerate(rows, 1):
            try:
                if not isinstance(row.get(args.predict_field), str):
                    raise ValueError(f"field {args.predict_field!r} must be a string, got "
                                     f"{type(row.get(args.predict_field)).__name__}")  # fmt: skip
                gold.append(normalize_label(row[args.label_field], task))
                pred.append(parse_verdict(row[args.predict_field]).label(task))
                outputs.append(row[args.predict_field])
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"{path}: record {i}: {type(e).__name__}: {e}") from e
        m = binary_metrics(gold, pred, task, bootstrap=args.bootstrap)
        results[str(path)] = {"task": task.value, "scoring": "strict", **m.to_dict(),
                              **consistency_metrics([contradicts(o) for o in outputs])}  # fmt: skip
        if args.scoring == "reference":  # GuardReasoner's evaluate.py rule, beside our strict F1
            ref_f1, pairs = reference_f1(gold, outputs, task)
            results[str(path)]["reference"] = {"f1": ref_f1, "n": pairs.n, "unparsed": pairs.unparsed,
                                               "dropped": pairs.dropped, "doubled": pairs.doubled}  # fmt: skip
    pct = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    rows = [
        [p, m["n"], f"{m['f1']:.2f}", f"[{m['f1_ci'][0]:.1f}, {m['f1_ci'][1]:.1f}]" if m["f1_ci"] else "",
         *([f"{m['reference']['f1']:.2f} (n={m['reference']['n']})"] if args.scoring == "reference" else []),
         f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['accuracy']:.2f}", m["parse_failures"],
         f"{pct(m['contradiction_rate'])} (of {m['consistency_checked']})"]
        for p, m in results.items()
    ]  # fmt: skip
    header = ["file", "n", "F1", "95% CI", *(["F1 (reference)"] if args.scoring == "reference" else []),
              "precision", "recall", "accuracy", "parse failures", "contradictions %"]  # fmt: skip
    print(markdown_table(header, rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _shard(args: argparse.Namespace) -> tuple[tuple[int, int] | None, bool]:
    """(k, n) from --shard K/N, or from torchrun/accelerate's RANK and WORLD_SIZE; and whether it came from a launcher."""
    import os

    if args.shard:
        try:
            k, n = map(int, args.shard.split("/"))
        except ValueError:
            raise ValueError(f"--shard takes K/N (e.g. 0/4), got {args.shard!r}") from None
        if not 0 <= k < n:
            raise ValueError(f"--shard {args.shard}: K must be in 0..N-1")
        return (k, n), False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return ((int(os.environ.get("RANK", "0")), world), True) if world > 1 else (None, False)


def _print_results(results: dict) -> None:
    rows = [
        [name, m["task"], m["n"], f"{m['f1']:.2f}", f"[{m['f1_ci'][0]:.1f}, {m['f1_ci'][1]:.1f}]" if m["f1_ci"] else "",
         f"{m['accuracy']:.2f}", m["parse_failures"],
         "–" if m.get("contradiction_rate") is None else f"{m['contradiction_rate']:.1f} (of {m['consistency_checked']})",
         "–" if m.get("mean_output_tokens") is None else f"{m['mean_output_tokens']:.0f}"]
        for name, m in results["benchmarks"].items()
    ]  # fmt: skip
    print(markdown_table(["benchmark", "task", "n", "F1", "95% CI", "accuracy", "parse failures", "contradictions %",
                          "tokens/verdict"], rows))  # fmt: skip
    for task, avg in results["averages"].items():
        print(f"weighted average ({task}): F1 {avg['f1']:.2f} over {avg['n']} samples")
    cost = results.get("cost") or {}
    if cost.get("seconds_per_1k") is not None:
        print(f"generation: {cost['seconds_per_1k']:.1f} s per 1000 items on {cost.get('device') or '?'}")


def _wait_and_merge(output: Path, n: int, timeout_s: float = 86400) -> dict:
    import time

    from guard_eval.results.rundir import RESULTS_FILE, merge_runs

    dirs = [output / f"shard-{k}-of-{n}" for k in range(n)]
    deadline = time.time() + timeout_s
    while not all((d / RESULTS_FILE).exists() and json.loads((d / RESULTS_FILE).read_text()).get("complete") for d in dirs):
        if time.time() > deadline:
            raise RuntimeError(f"shards of {output} did not all complete; merge later with `guard-eval merge {output}`")
        time.sleep(2)
    return merge_runs(dirs, output)


def cmd_merge(args: argparse.Namespace) -> int:
    from guard_eval.results.rundir import merge_runs

    output = Path(args.output)
    dirs = sorted(output.glob("shard-*-of-*"), key=lambda d: int(d.name.split("-")[1]))
    if not dirs:
        raise FileNotFoundError(f"no shard-K-of-N dirs in {output}")
    n = int(dirs[0].name.rsplit("-", 1)[1])
    if len(dirs) != n:
        raise ValueError(f"{output}: found {len(dirs)} of {n} shards")
    _print_results(merge_runs(dirs, output))
    return 0


def _looks_local(model: str) -> bool:
    """A path rather than a hub id: it starts like one, or its first folder exists here (``runs/sft``)."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or ("/" in model and Path(model.split("/")[0]).is_dir())


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from guard_eval.benchmarks import resolve_data_dir
    from guard_eval.options import parse_options
    from guard_eval.generation import GenerationConfig, get_backend
    from guard_eval.modeling import checkpoint_metadata
    from guard_eval.selection import resolve_benchmarks
    from guard_eval.runner import EvalRun

    args.data_dir = str(resolve_data_dir(args.data_dir) or "") or None  # resolved once, absolute
    # A bad name or absent data fails (a suite's absent benchmark is skipped) before a model is loaded.
    benchmarks = resolve_benchmarks(args.benchmarks, args.data_dir, args.source, check_data=True)
    shard, launched = _shard(args)
    output = Path(args.output)
    # The old run's files go to OUTPUT/.replaced, deleted only once the new run has completed.
    aside = set_aside(output) if args.overwrite and (shard is None or shard[0] == 0) else None
    model = args.model
    if model == "tiny":  # the embedded default: a tiny Llama built locally (random weights unless trained)
        from guard_eval.tiny import build_tiny_model

        model = str(Path(args.output) / "tiny-model")
        if not Path(model, "config.json").exists():
            build_tiny_model(model)
    elif args.backend != "inspect":
        from guard_eval.model_sources import ModelSourceError, resolve

        if _looks_local(args.model) and not Path(args.model).exists():
            raise FileNotFoundError(f"--model {args.model}: no such local path (a hub id is ORG/NAME)")
        try:
            model = resolve(model)
        except ModelSourceError as e:
            print(f"error: {e}")
            return 1
        if model != args.model and not args.name:
            args.name = Path(args.model).stem if args.model.endswith(".gguf") else args.model
    run_dir = output / f"shard-{shard[0]}-of-{shard[1]}" if shard else output
    device = args.device
    if launched and device is None:
        import torch

        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    options = {"device": device, "dtype": args.dtype} if args.backend in ("hf", "vllm", "auto") else {}
    options.update(parse_options(args.backend_option, "--backend-option"))
    backend = get_backend(args.backend, model, **options)
    default_name = model if backend.name == "inspect" else Path(model).name  # "openai/gpt-4o", not "gpt-4o"
    run = EvalRun(
        backend=backend,
        benchmarks=benchmarks,
        output_dir=run_dir,
        shard=shard,
        model_info={"name": args.name or default_name, "path": model, "backend": backend.name,
                    "metadata": checkpoint_metadata(model)},  # fmt: skip
        generation=GenerationConfig(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, num_samples=args.num_samples,
            batch_size=args.batch_size, seed=args.seed,
        ),  # fmt: skip
        prompt_variant=args.prompt_variant,
        data_dir=args.data_dir,
        source=args.source,
        limit=args.limit,
        sample_seed=args.sample_seed,
        progress=not args.no_progress,
        backend_options=options,
        reasoning_budget=args.reasoning_budget,
    )
    results = run.run()
    if results.get("complete"):
        drop_replaced(aside)
    if launched:  # under torchrun / accelerate launch: rank 0 merges the shards once all are complete
        if shard[0] != 0:
            return 0
        results = _wait_and_merge(output, shard[1])
    elif shard:
        output = run_dir
    _print_results(results)
    print(f"results: {output / 'results.json'}")
    return 0


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from guard_eval.tiny import build_tiny_model

    print(build_tiny_model(args.output, seed=args.seed))
    return 0


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default: $GUARD_DATA_DIR, else ../shared/data if present)")
    p.add_argument("--source", choices=["auto", "local", "hub"], default="auto", help="where to read test sets from")


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    from guard_eval.prompting import PROMPT_VARIANTS
    from guard_eval.verdict import TaskType

    p = subparsers.add_parser("benchmarks", help="list registered benchmarks")
    add_data_options(p)
    p.add_argument("--count", action="store_true", help="load each local file and count its samples")
    p.set_defaults(func=cmd_benchmarks)

    p = subparsers.add_parser("lm-eval-path", help="print the lm-eval task folder (lm_eval --include_path "
                              "$(guard-eval lm-eval-path) --tasks guard_demo ...)")  # fmt: skip
    p.add_argument("--available", action="store_true", help="tasks and suites of the benchmarks with data under "
                   "$GUARD_DATA_DIR only (guard_suite without WildGuardTest, say); one warning per skipped benchmark")
    p.set_defaults(func=cmd_lm_eval_path)

    p = subparsers.add_parser("plugins", help="list loaded plugins, what they provide, and plugin errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = subparsers.add_parser("score", help="score GuardReasoner-format predictions files (fields predict, label)")
    p.add_argument("predictions", nargs="+", help="JSONL files")
    p.add_argument("--task", required=True, choices=[t.value for t in TaskType])
    p.add_argument("--predict-field", default="predict")
    p.add_argument("--label-field", default="label")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the F1 CI (0: none)")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--scoring", choices=("strict", "reference"), default="strict",
                   help="reference: also GuardReasoner's evaluate.py F1 (last 300 characters, first match, its "
                   "handling of unparsed samples), to reproduce published cells (docs/leaderboard.md)")  # fmt: skip
    p.set_defaults(func=cmd_score)

    p = subparsers.add_parser("run", help="generate, parse and score a model on benchmarks (resumable)")
    p.add_argument("--model", required=True, help="HF model dir, hub id, LoRA adapter dir, or 'tiny' (a tiny Llama "
                   "with RANDOM weights, for trying the pipeline: its scores mean nothing)")
    p.add_argument("--benchmarks", nargs="+", default=["demo"], help="benchmark or suite names (default: demo)")
    p.add_argument("--output", required=True, help="output dir (results.json + samples.jsonl); re-run to resume")
    p.add_argument("--name", help="label for this checkpoint in reports")
    p.add_argument("--backend", default="auto", help="generation backend: auto (= hf, the fast loop), hf, "
                   "vllm, inspect (--model is then an Inspect model name), or a plugin's (see `guard-eval plugins`)")
    p.add_argument("--backend-option", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable: tensor_parallel_size=2, max_model_len=8192, max_connections=8")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", help="float32, bfloat16 ... (default: bf16 on GPU, fp32 on CPU)")
    p.add_argument("--prompt-variant", choices=PROMPT_VARIANTS, default="chat")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--reasoning-budget", type=int, metavar="N", help="at most N reasoning tokens: a completion "
                   "without its Answers block by then gets 'Answers:' appended and a short remainder generated")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--num-samples", type=int, default=1, help="completions per prompt")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="at most N samples per benchmark")
    p.add_argument("--sample-seed", type=int, help="with --limit: a seeded random subset instead of the first N")
    p.add_argument("--overwrite", action="store_true", help="replace the run in the output dir instead of resuming: its "
                   "files are moved to OUTPUT/.replaced and deleted once the new run completes (other files untouched)")
    p.add_argument("--shard", help="K/N: evaluate every N-th sample from the K-th into OUTPUT/shard-K-of-N "
                   "(set automatically under torchrun / accelerate launch, where rank 0 merges the shards)")
    p.add_argument("--no-progress", action="store_true")
    add_data_options(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("merge", help="merge OUTPUT/shard-K-of-N dirs of a data-parallel run into OUTPUT")
    p.add_argument("output")
    p.set_defaults(func=cmd_merge)

    p = subparsers.add_parser("tiny-model", help="build the tiny local Llama used by the demo and the tests")
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tiny_model)
