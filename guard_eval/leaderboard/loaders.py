"""Read runs from what the three front ends write, and the stored baselines.

* a ``guard-eval run`` output dir (``results.json`` + ``samples.jsonl``; ``judged.jsonl`` from ``guard-eval judge``);
* Inspect logs (``.eval`` or ``.json``) of the guard-bench tasks: per-sample score metadata ``gold``, ``pred``,
  ``benchmark``, ``task``; a ``reasoning_quality`` score when that scorer ran. Logs of one model form one run;
* lm-eval results files (``lm_eval --output_path``: ``results_<date>.json`` and, with ``--log_samples``,
  ``samples_<task>_<date>.jsonl`` beside it);
* a folder holding any of these (searched recursively): one run per guard-eval dir, per Inspect model, per lm-eval file.

Where per-sample data exists, metrics are recomputed from it with the shared metric code (same F1 and bootstrap CI
for every source); otherwise the stored aggregates are shown, without an interval.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from guard_eval.leaderboard.model import BenchmarkResult, Outcome, Run, mean_ci
from guard_eval.verdict import normalize_label, parse_verdict

BASELINES = ("jbb", "guardreasoner-1b", "guardreasoner-3b")
JBB_JUDGES = ("harmbench_cf", "gpt4_cf", "llamaguard2_cf", "llama3_cf")


class RunFormatError(ValueError):
    """A file that is not a run in any supported format, or a malformed one; the message names the file."""


def _known_benchmarks() -> dict[str, str]:
    from guard_eval import plugins

    return {name: b.task.value for name, b in plugins.benchmarks().items()}


def benchmark_name(task_name: str, known: dict[str, str]) -> str:
    """A registered benchmark name for an Inspect / lm-eval task name (``guard_eval/toxicchat``, ``guard_toxicchat``),
    else the task name itself."""
    base = task_name.rsplit("/", 1)[-1]
    if base in known:
        return base
    matches = [b for b in known if base.endswith("_" + b) or base.startswith(b + "_")]
    return max(matches, key=len) if matches else base


# ---------------------------------------------------------------------------------------------------------------------
# guard-eval results dirs
# ---------------------------------------------------------------------------------------------------------------------


def load_guard_eval(run_dir: Path, bootstrap: int = 1000) -> Run:
    from guard_eval.runner import RESULTS_FILE, SAMPLES_FILE, read_records

    path = run_dir / RESULTS_FILE
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        stored = results["benchmarks"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFormatError(f"{path}: not a guard-eval results file ({type(e).__name__}: {e})") from e
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for i, rec in enumerate(read_records(run_dir / SAMPLES_FILE), 1):
        try:
            by_bench[rec["benchmark"]].append(rec)
        except (KeyError, TypeError) as e:
            raise RunFormatError(f"{run_dir / SAMPLES_FILE}: record {i}: no 'benchmark' field") from e
    run = Run(
        name=(results.get("model") or {}).get("name") or run_dir.name,
        source=str(run_dir),
        kind="guard-eval",
        meta={"complete": results.get("complete"), "path": (results.get("model") or {}).get("path")},
    )
    for name in {**stored, **by_bench}:
        recs = by_bench.get(name)
        if recs:
            outcomes = []
            for rec in recs:
                try:
                    key = rec["id"] if rec.get("sample") is None else f"{rec['id']}#{rec['sample']}"
                    outcomes.append(
                        Outcome(
                            key, rec["gold"], rec["pred"], rec.get("prompt"), rec.get("output"), rec.get("response")
                        )
                    )
                except KeyError as e:
                    raise RunFormatError(f"{run_dir / SAMPLES_FILE}: record {rec.get('id')!r} lacks {e}") from e
            run.benchmarks[name] = BenchmarkResult.from_outcomes(name, recs[0]["task"], outcomes, bootstrap)
        else:
            m = stored[name]
            run.benchmarks[name] = BenchmarkResult(
                name, m["task"], m["n"], m["f1"], tuple(m["f1_ci"]) if m.get("f1_ci") else None,
                m.get("accuracy"), m.get("precision"), m.get("recall"), m.get("parse_failures"),
            )  # fmt: skip
    rq = results.get("reasoning_quality")
    if rq:
        run.reasoning_quality = rq.get("total")
        run.meta["judge"] = rq.get("judge")
        judged = run_dir / rq.get("file", "judged.jsonl")
        if judged.exists():
            scores = [r["total"] for r in read_records(judged) if r.get("error") is None]
            run.reasoning_scores = scores
            run.reasoning_quality_ci = mean_ci(scores, bootstrap)
    return run


# ---------------------------------------------------------------------------------------------------------------------
# Inspect logs
# ---------------------------------------------------------------------------------------------------------------------


def _label_score(scores: dict[str, Any]) -> Any:
    """The score whose metadata carries the guard label (gold and pred), whatever the scorer is called."""
    for score in (scores or {}).values():
        if isinstance(score.metadata, dict) and "gold" in score.metadata and "pred" in score.metadata:
            return score
    return None


def _inspect_model_name(log: Any) -> str:
    """The model of a log; a local checkpoint (``hf/local -M model_path=DIR``) is named by its directory."""
    path = (log.eval.model_args or {}).get("model_path")
    return f"{log.eval.model} ({path})" if path else log.eval.model


def load_inspect_logs(paths: list[Path], bootstrap: int = 1000) -> list[Run]:
    """One run per model over all given logs; a re-run of the same task replaces the older log."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise RuntimeError(f"{paths[0]}: reading Inspect logs needs inspect-ai: pip install 'guard-bench[inspect]'") from None

    known = _known_benchmarks()
    latest: dict[tuple[str, str], Any] = {}
    for path in paths:
        try:
            log = read_eval_log(str(path))
        except Exception as e:  # noqa: BLE001 -- any reader failure is "this file is not an Inspect log"
            raise RunFormatError(f"{path}: not a readable Inspect log ({type(e).__name__}: {e})") from e
        if log.status != "success":
            raise RunFormatError(f"{path}: Inspect log status is {log.status!r}; re-run or remove it")
        key = (_inspect_model_name(log), log.eval.task)
        if key not in latest or log.eval.created > latest[key][1].eval.created:
            latest[key] = (path, log)
    runs: dict[str, Run] = {}
    for (model, task_name), (path, log) in sorted(latest.items()):
        run = runs.setdefault(model, Run(model, str(path.parent), "inspect", meta={"logs": []}))
        run.meta["logs"].append(str(path))
        per_bench: dict[str, list[Outcome]] = defaultdict(list)
        task_of: dict[str, str] = {}
        quality: list[float] = []
        for sample in log.samples or []:
            score = _label_score(sample.scores)
            if score is None:
                continue
            meta = score.metadata
            bench = meta.get("benchmark") or benchmark_name(task_name, known)
            task = meta.get("task") or known.get(bench)
            if task is None:
                raise RunFormatError(
                    f"{path}: sample {sample.id!r}: score metadata has no 'task' and {bench!r} is not a registered benchmark"
                )
            task_of[bench] = task
            key = str(sample.id) if sample.epoch == 1 else f"{sample.id}#{sample.epoch - 1}"
            sample_meta = sample.metadata or {}
            output = sample.output.completion if sample.output else None
            per_bench[bench].append(Outcome(key, meta["gold"], meta["pred"], sample_meta.get("prompt"), output,
                                            sample_meta.get("response")))  # fmt: skip
            rq = (sample.scores or {}).get("reasoning_quality")
            if rq is not None and isinstance(rq.value, dict) and "total" in rq.value:
                quality.append(float(rq.value["total"]))
        for bench, outcomes in per_bench.items():
            run.benchmarks[bench] = BenchmarkResult.from_outcomes(bench, task_of[bench], outcomes, bootstrap)
        if not per_bench:  # a log without samples: the aggregate metrics only
            bench = benchmark_name(task_name, known)
            metrics = {
                m_name: m.value for s in (log.results.scores if log.results else []) for m_name, m in s.metrics.items()
            }
            if "f1" not in metrics or bench not in known:
                raise RunFormatError(f"{path}: no per-sample guard scores and no f1 metric for a known benchmark")
            run.benchmarks[bench] = BenchmarkResult(bench, known[bench], log.results.completed_samples, metrics["f1"],
                                                    accuracy=metrics.get("accuracy"), precision=metrics.get("precision"),
                                                    recall=metrics.get("recall"))  # fmt: skip
        if quality:
            run.reasoning_scores = (run.reasoning_scores or []) + quality
    for run in runs.values():
        if run.reasoning_scores:
            run.reasoning_quality = sum(run.reasoning_scores) / len(run.reasoning_scores)
            run.reasoning_quality_ci = mean_ci(run.reasoning_scores, bootstrap)
    return list(runs.values())


# ---------------------------------------------------------------------------------------------------------------------
# lm-eval results
# ---------------------------------------------------------------------------------------------------------------------


def _lm_eval_model(data: dict[str, Any], path: Path) -> str:
    if data.get("model_name"):
        return str(data["model_name"])
    args = (data.get("config") or {}).get("model_args") or ""
    if isinstance(args, dict):
        return str(args.get("pretrained") or path.parent.name)
    for part in str(args).split(","):
        if part.startswith("pretrained="):
            return part.split("=", 1)[1]
    return path.parent.name


def load_lm_eval(path: Path, bootstrap: int = 1000) -> Run:
    from guard_eval.runner import read_records

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        results = data["results"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFormatError(f"{path}: not an lm-eval results file ({type(e).__name__}: {e})") from e
    known = _known_benchmarks()
    run = Run(_lm_eval_model(data, path), str(path), "lm-eval")
    stamp = path.stem.removeprefix("results_")
    for task_name, metrics in results.items():
        f1_key = next((k for k in metrics if k == "f1" or k.startswith("f1,")), None)
        bench = benchmark_name(task_name, known)
        if f1_key is None or bench not in known:
            continue  # groups and tasks that are not guard benchmarks
        task = known[bench]
        samples_file = path.parent / f"samples_{task_name}_{stamp}.jsonl"
        if samples_file.exists():
            outcomes = []
            for i, rec in enumerate(read_records(samples_file), 1):
                try:
                    resp = rec["filtered_resps"][0]
                    text = resp[0] if isinstance(resp, list) else resp
                    gold = normalize_label(rec["target"], task)
                    outcomes.append(
                        Outcome(f"{bench}-{rec['doc_id']}", gold, parse_verdict(text).label(task), None, text)
                    )
                except (KeyError, IndexError, TypeError, ValueError) as e:
                    raise RunFormatError(f"{samples_file}: record {i}: {type(e).__name__}: {e}") from e
            run.benchmarks[bench] = BenchmarkResult.from_outcomes(bench, task, outcomes, bootstrap)
        else:
            n = ((data.get("n-samples") or {}).get(task_name) or {}).get("effective")
            acc = next((v for k, v in metrics.items() if k.split(",")[0] == "accuracy"), None)
            run.benchmarks[bench] = BenchmarkResult(bench, task, int(n or 0), float(metrics[f1_key]), accuracy=acc)
    if not run.benchmarks:
        raise RunFormatError(f"{path}: no guard benchmark with an f1 metric among tasks {sorted(results)}")
    return run


# ---------------------------------------------------------------------------------------------------------------------
# Baselines and dispatch
# ---------------------------------------------------------------------------------------------------------------------


def load_baseline(name: str, data_dir: str | None = None) -> list[Run]:
    """Stored results as rows, from the shared data:

    * ``jbb``: the four classifiers of JailbreakBench's judge comparison (HarmBench, GPT-4, LlamaGuard 2, Llama 3
      judges) on jbb_response, against the human majority;
    * ``guardreasoner-1b`` / ``guardreasoner-3b``: the released GuardReasoner traces (guardreasoner/test/), on the six
      benchmarks they cover, with the traces kept for judging and comparing.
    """
    if name == "jbb":
        return _jbb_baseline(data_dir)
    if name in ("guardreasoner-1b", "guardreasoner-3b"):
        return [_guardreasoner_baseline(name.rsplit("-", 1)[1].upper(), data_dir)]
    raise ValueError(f"unknown baseline {name!r}; available: {', '.join(BASELINES)}")


def _jbb_baseline(data_dir: str | None) -> list[Run]:
    from guard_eval import plugins

    bench = plugins.benchmarks()["jbb_response"]
    samples = bench.load(data_dir, source="local")
    runs = []
    for judge in JBB_JUDGES:
        outcomes = []
        for s in samples:
            if judge not in s.metadata:
                raise RunFormatError(f"{bench.local_path(data_dir)}: no column {judge!r}")
            pred = "harmful" if str(s.metadata[judge]).strip() in ("1", "1.0", "True") else "unharmful"
            outcomes.append(Outcome(s.id, s.label, pred, s.prompt, None, s.response))
        result = BenchmarkResult.from_outcomes(bench.name, bench.task.value, outcomes)
        runs.append(Run(f"JBB {judge}", str(bench.local_path(data_dir)), "baseline", {bench.name: result}))
    return runs


def _guardreasoner_baseline(size: str, data_dir: str | None) -> Run:
    """Sample keys are ``<benchmark>-<index>`` like ``guard-eval run`` ids: the released files follow the test sets'
    order, so ``compare`` pairs them with a run of your own."""
    from guard_eval.judging.validate import load_reference_traces

    run = Run(f"GuardReasoner-{size} (released)", f"guardreasoner/test/{size}", "baseline")
    for bench, items in load_reference_traces(data_dir, size).items():
        outcomes = [
            Outcome(f"{bench}-{i}", it.gold, parse_verdict(it.output).label(it.task), it.prompt, it.output, it.response)
            for i, it in enumerate(items)
        ]
        run.benchmarks[bench] = BenchmarkResult.from_outcomes(bench, items[0].task, outcomes)
    return run


def judge_runs(runs: list[Run], judge: str, options: dict[str, Any] | None = None, bootstrap: int = 1000) -> None:
    """Give runs that keep their traces but have no reasoning-quality score one from ``judge``, in memory."""
    from guard_eval.judging import JudgeInput, get_judge

    scorer = None
    for run in runs:
        if run.reasoning_quality is not None:
            continue
        items = [
            JudgeInput(o.prompt or "", o.response, o.output, r.task, o.gold)
            for r in run.benchmarks.values() for o in (r.outcomes or []) if o.output is not None
        ]  # fmt: skip
        if not items:
            continue
        scorer = scorer or get_judge(judge, **(options or {}))
        scores = [s.total for s in scorer.score(items) if s.error is None]
        if scores:
            run.reasoning_scores = scores
            run.reasoning_quality = sum(scores) / len(scores)
            run.reasoning_quality_ci = mean_ci(scores, bootstrap)
            run.meta["judge"] = judge


def _sniff_json(path: Path) -> str | None:
    """'lm-eval', 'inspect' or None for a .json file (reads its start only when it is large)."""
    try:
        with path.open(encoding="utf-8") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if '"results"' in head and ('"configs"' in head or '"versions"' in head or path.name.startswith("results_")):
        return "lm-eval"
    if '"eval"' in head and '"version"' in head:
        return "inspect"
    return None


def load_path(path: str | Path, bootstrap: int = 1000) -> list[Run]:
    """The runs a command-line argument names: a results dir/file, a log, an lm-eval file, or a folder of them."""
    from guard_eval.runner import RESULTS_FILE

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run not found: {path}")
    if path.is_file() and path.name == RESULTS_FILE:
        path = path.parent
    if path.is_dir() and (path / RESULTS_FILE).exists():
        return [load_guard_eval(path, bootstrap)]
    if path.is_file():
        kind = "inspect" if path.suffix == ".eval" else _sniff_json(path) if path.suffix == ".json" else None
        if kind == "inspect":
            return load_inspect_logs([path], bootstrap)
        if kind == "lm-eval":
            return [load_lm_eval(path, bootstrap)]
        raise RunFormatError(f"{path}: not a guard-eval results dir, Inspect log or lm-eval results file")
    runs: list[Run] = []
    guard_dirs = sorted({p.parent for p in path.rglob(RESULTS_FILE)})
    runs += [load_guard_eval(d, bootstrap) for d in guard_dirs if not d.name.startswith("shard-")]
    logs = sorted(p for p in path.rglob("*.eval"))
    jsons = [p for p in sorted(path.rglob("*.json")) if p.name != RESULTS_FILE]
    logs += [p for p in jsons if _sniff_json(p) == "inspect"]
    if logs:
        runs += load_inspect_logs(logs, bootstrap)
    runs += [load_lm_eval(p, bootstrap) for p in jsons if _sniff_json(p) == "lm-eval"]
    if not runs:
        raise RunFormatError(f"{path}: no guard-eval results, Inspect logs or lm-eval results inside")
    return runs


def load_runs(
    specs: list[str], baselines: list[str] = (), data_dir: str | None = None, bootstrap: int = 1000
) -> list[Run]:
    """Runs for ``[NAME=]PATH`` (or ``baseline:NAME``) arguments, plus baseline rows; row names are made unique by
    their source."""
    runs: list[Run] = []
    for spec in specs:
        if spec.startswith("baseline:"):
            runs += load_baseline(spec.removeprefix("baseline:"), data_dir)
            continue
        name, sep, target = spec.partition("=")
        if not sep or Path(spec).exists():
            name, target = "", spec
        loaded = load_path(target, bootstrap)
        if name:
            if len(loaded) > 1:
                raise ValueError(f"{spec}: NAME=PATH needs a path holding one run, found {len(loaded)}")
            loaded[0].name = name
        runs += loaded
    for baseline in baselines:
        runs += load_baseline(baseline, data_dir)
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        counts[run.name] += 1
    for run in runs:
        if counts[run.name] > 1:
            run.name = f"{run.name} ({run.source})"
    return runs
