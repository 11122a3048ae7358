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
from typing import TYPE_CHECKING, Any

from guard_eval.results.model import BenchmarkResult, Outcome, Run, mean_ci
from guard_eval.results.rundir import RESULTS_FILE, SAMPLES_FILE, read_records
from guard_eval.verdict import normalize_label, parse_verdict

if TYPE_CHECKING:
    from guard_eval.judging import JudgeInput

BASELINES = ("jbb", "guardreasoner-1b", "guardreasoner-3b")
JBB_JUDGES = ("harmbench_cf", "gpt4_cf", "llamaguard2_cf", "llama3_cf")
_HUMAN = "Human user:\n"


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
                        Outcome(key, rec["gold"], rec["pred"], rec.get("prompt"), rec.get("output"), rec.get("response"),
                                rec.get("output_tokens"))  # fmt: skip
                    )
                except KeyError as e:
                    raise RunFormatError(f"{run_dir / SAMPLES_FILE}: record {rec.get('id')!r} lacks {e}") from e
            run.benchmarks[name] = BenchmarkResult.from_outcomes(name, recs[0]["task"], outcomes, bootstrap)
        else:
            m = stored[name]
            run.benchmarks[name] = BenchmarkResult(
                name, m["task"], m["n"], m["f1"], tuple(m["f1_ci"]) if m.get("f1_ci") else None,
                m.get("accuracy"), m.get("precision"), m.get("recall"), m.get("parse_failures"),
                contradiction_rate=m.get("contradiction_rate"), consistency_checked=m.get("consistency_checked"),
                mean_output_tokens=m.get("mean_output_tokens"),
            )  # fmt: skip
    cost = results.get("cost") or {}
    run.seconds_per_1k, run.device = cost.get("seconds_per_1k"), cost.get("device")
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


def _label_score(scores: dict[str, Any] | None) -> Any:
    """The score whose metadata carries the guard label (gold and pred), whatever the scorer is called."""
    for score in (scores or {}).values():
        if isinstance(score.metadata, dict) and "gold" in score.metadata and "pred" in score.metadata:
            return score
    return None


def _inspect_model_name(spec: Any) -> str:
    """The model of a log; a local checkpoint (``hf/local -M model_path=DIR``) is named by its directory."""
    path = (spec.model_args or {}).get("model_path")
    return f"{spec.model} ({path})" if path else spec.model


def inspect_log_paths(paths: list[str | Path]) -> list[tuple[Path, float]]:
    """``(log file, mtime ms)`` under folders (recursively, in Inspect's own listing) and for given files."""
    from inspect_ai.log import list_eval_logs

    found: list[tuple[Path, float]] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [(Path(info.name.removeprefix("file://")), info.mtime or 0.0)
                      for info in list_eval_logs(str(path), recursive=True)]  # fmt: skip
        elif path.is_file():
            found.append((path, path.stat().st_mtime * 1000))
        else:
            raise RunFormatError(f"{path}: no such file or folder")
    return found


def load_inspect_logs(paths: list[str | Path], bootstrap: int = 1000, skipped: list[str] | None = None) -> list[Run]:
    """One run per model over all given logs. Samples are keyed by model and sample id (and epoch); a later log
    replaces an earlier one's samples, so a re-run, or per-benchmark logs mixed with a suite log, never counts a sample
    twice. Unfinished logs and logs without guard scores are listed in ``skipped`` ("path: reason")."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise RuntimeError(f"{paths[0]}: reading Inspect logs needs inspect-ai: pip install 'guard-bench[inspect]'") from None

    skipped = [] if skipped is None else skipped
    logs = []
    for path, mtime in inspect_log_paths(paths):
        try:
            logs.append((path, mtime, read_eval_log(str(path))))
        except Exception as e:  # noqa: BLE001 -- any reader failure is "this file is not an Inspect log"
            raise RunFormatError(f"{path}: not a readable Inspect log ({type(e).__name__}: {e})") from e
    if not logs:
        raise RunFormatError(f"no Inspect logs (.eval/.json) in {', '.join(map(str, paths))}")
    known = _known_benchmarks()
    outcomes: dict[str, dict[str, tuple[str, str, Outcome]]] = defaultdict(dict)  # model -> key -> (bench, task, o)
    quality: dict[str, dict[str, float]] = defaultdict(dict)
    runs: dict[str, Run] = {}
    # Oldest first, so later logs overwrite; `created` has one-second resolution, the file time breaks ties.
    for path, _, log in sorted(logs, key=lambda item: (item[2].eval.created, item[1])):
        if log.status != "success":
            skipped.append(f"{path}: status {log.status}")
            continue
        model, used = _inspect_model_name(log.eval), False
        for sample in log.samples or []:
            score = _label_score(sample.scores)
            if score is None:
                continue
            meta = score.metadata
            bench = meta.get("benchmark") or benchmark_name(log.eval.task, known)
            task = meta.get("task") or known.get(bench)
            if task not in ("prompt", "response", "refusal"):
                raise RunFormatError(f"{path}: sample {sample.id!r}: unknown task {task!r} for benchmark {bench!r}")
            sid = str(meta.get("id") or sample.id)
            key = sid if sample.epoch == 1 else f"{sid}#{sample.epoch - 1}"
            sample_meta = sample.metadata or {}
            output = sample.output.completion if sample.output else None
            outcomes[model][f"{bench}/{key}"] = (bench, task, Outcome(key, meta["gold"], meta["pred"],
                                                 sample_meta.get("prompt"), output, sample_meta.get("response")))
            rq = (sample.scores or {}).get("reasoning_quality")
            if rq is not None and isinstance(rq.value, dict) and "total" in rq.value:
                quality[model][f"{bench}/{key}"] = float(rq.value["total"])
            used = True
        if not used and log.results and not log.samples:  # a log without samples: the aggregate metrics only
            bench = benchmark_name(log.eval.task, known)
            metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
            if "f1" in metrics and bench in known:
                run = runs.setdefault(model, Run(model, str(path.parent), "inspect", meta={"logs": []}))
                run.benchmarks[bench] = BenchmarkResult(bench, known[bench], log.results.completed_samples,
                                                        metrics["f1"], accuracy=metrics.get("accuracy"),
                                                        precision=metrics.get("precision"),
                                                        recall=metrics.get("recall"))  # fmt: skip
                used = True
        if used:
            runs.setdefault(model, Run(model, str(path.parent), "inspect", meta={"logs": []})).meta["logs"].append(str(path))
        else:
            skipped.append(f"{path}: no guard_scorer scores")
    for model, by_key in outcomes.items():
        per_bench: dict[str, list[Outcome]] = defaultdict(list)
        task_of = {}
        for bench, task, o in by_key.values():
            per_bench[bench].append(o)
            task_of[bench] = task
        for bench, outs in per_bench.items():
            runs[model].benchmarks[bench] = BenchmarkResult.from_outcomes(bench, task_of[bench], outs, bootstrap)
    for model, scores in quality.items():
        runs[model].reasoning_scores = list(scores.values())
        runs[model].reasoning_quality = sum(scores.values()) / len(scores)
        runs[model].reasoning_quality_ci = mean_ci(list(scores.values()), bootstrap)
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
    published = published_runs(name)
    if published:
        return published
    from guard_eval.baselines import published_baselines

    raise ValueError(f"unknown baseline {name!r}; stored outputs: {', '.join(BASELINES)}; published rows: "
                     f"{', '.join(sorted(published_baselines()))}")  # fmt: skip


def published_runs(name: str) -> list[Run]:
    """Rows of numbers a paper printed (guard_eval.baselines), each cell with its provenance and no sample data:
    ``guardreasoner-8b``, ``qwen3guard-8b`` (strict and loose rows), ``wildguard-7b@qwen3guard``, ...
    ``guardreasoner-1b``/``-3b`` name the released traces above; their printed rows are ``guardreasoner-1b@guardreasoner``."""
    from guard_eval.averaging import PAPER_SAMPLE_COUNTS
    from guard_eval.baselines import find_published

    def provenance(cell) -> dict[str, Any]:
        return {"published": True, "citation": cell.citation, "source": cell.source, "table": cell.table,
                "note": cell.note, "printed": cell.f1_text}  # fmt: skip

    runs = []
    for row in find_published(name):
        run = Run(f"{row.display_name} [published]", row.cells[next(iter(row.cells))].source, "published",
                  meta={"baseline": row.name, "printed_averages": {
                      t: {**provenance(c), "value": c.f1} for t, c in row.averages.items()
                      if any(cell.task == t for cell in row.cells.values())}})  # fmt: skip
        for bench, cell in row.cells.items():
            # n: the size of the test set the paper scored, where known (used by --average weighted), else 0
            run.benchmarks[bench] = BenchmarkResult(bench, cell.task, PAPER_SAMPLE_COUNTS.get(bench, 0), cell.f1,
                                                    provenance=provenance(cell))  # fmt: skip
        runs.append(run)
    return runs


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


def reference_trace(row: dict[str, Any], task: str, gold: str, where: str) -> JudgeInput:
    """A released ``generated_predictions.jsonl`` row (instruction + input in ``prompt``) as a trace."""
    from guard_eval.judging import JudgeInput
    from guard_eval.prompting import parse_input

    text = row.get("prompt", "")
    if _HUMAN not in text or "predict" not in row:
        raise RunFormatError(f"{where}: expected fields prompt (with 'Human user:') and predict, got {sorted(row)}")
    prompt, response = parse_input(text)
    return JudgeInput(prompt, response, row["predict"], task, gold)


def load_reference_traces(
    data_dir: str | Path | None, model: str, limit: int | None = None
) -> dict[str, list[JudgeInput]]:
    """``{benchmark: [trace...]}`` for the benchmarks with released predictions of ``model`` ("1B" or "3B"), as judge
    inputs (:mod:`guard_eval.judging.validate` checks judges on them)."""
    from guard_eval.benchmarks import read_rows, resolve_data_dir
    from guard_eval import plugins

    root = resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError("no data directory: pass --data-dir or set $GUARD_DATA_DIR")
    out: dict[str, list[JudgeInput]] = {}
    for name, bench in sorted(plugins.benchmarks().items()):
        rel = bench.reference_predictions.get(model)
        if rel:
            path = root / rel
            out[name] = [reference_trace(r, bench.task.value, normalize_label(r["label"], bench.task), f"{path}:{i}")
                         for i, r in enumerate(read_rows(path, name)[:limit], 1)]  # fmt: skip
    if not out:
        raise FileNotFoundError(f"no released {model} predictions under {root}/guardreasoner/test/{model}/")
    return out


def _guardreasoner_baseline(size: str, data_dir: str | None) -> Run:
    """Sample keys are ``<benchmark>-<index>`` like ``guard-eval run`` ids: the released files follow the test sets'
    order, so ``compare`` pairs them with a run of your own."""
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
