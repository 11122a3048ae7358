"""``guard-train experiment CONFIG``: the research plan as one resumable pipeline.

Stages (each writes ``OUTPUT/<stage>/`` and, when finished, ``OUTPUT/<stage>/stage.json``; a re-run skips finished
stages and resumes the first unfinished one — evaluation stages resume sample by sample)::

    sft? -> eval_base -> judge_base -> eval_references? -> prefs -> train -> eval_trained -> judge_trained -> compare -> report

Without ``prefs``/``train`` in the config it is Phase 1 (quick evaluation of one checkpoint): eval, judge, report.
The success criteria of the plan are checked in the report: accuracy within +-``max_accuracy_change`` points of the
base, reasoning quality up by ``min_reasoning_gain_pct`` percent, and (when a human-eval DB is given) the trained
model preferred in more than ``min_human_preference_pct`` percent of answered items.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from guard_eval.hookspecs import hookimpl

STAGE_FILE = "stage.json"


@dataclass
class TrainStep:
    """A training-method stage: a registered method, its YAML config file, and overrides."""

    method: str
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSettings:
    benchmarks: list[str] = field(default_factory=lambda: ["demo"])
    limit: int | None = None
    sample_seed: int | None = 0
    max_new_tokens: int = 512
    batch_size: int = 16
    prompt_variant: str = "chat"
    data_dir: str | None = None
    backend: str = "auto"


@dataclass
class Criteria:
    max_accuracy_change: float = 2.0  # points
    min_reasoning_gain_pct: float = 10.0  # relative, percent
    min_human_preference_pct: float = 60.0


@dataclass
class ExperimentConfig:
    name: str
    output_dir: str
    model: str  # base checkpoint: HF dir, hub id, LoRA adapter dir, or "tiny" (built locally)
    tiny: dict[str, Any] = field(default_factory=dict)  # with model "tiny": build_tiny_model shape options
    eval: EvalSettings = field(default_factory=EvalSettings)
    judge: str = "heuristic"
    references: list[str] = field(default_factory=list)  # other models evaluated on the same items (e.g. the base)
    sft: TrainStep | None = None
    prefs: TrainStep | None = None
    train: TrainStep | None = None
    human_eval_db: str | None = None
    criteria: Criteria = field(default_factory=Criteria)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        """The config in ``path``; a bad YAML, an unknown key or a wrong type is an error naming the file and field."""
        from guard_train.config import build_config, read_yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"experiment config not found: {path}")
        config = build_config(cls, read_yaml(path), str(path))
        config.source = str(path)  # not a field: experiment.json compares fields only
        return config

    def validate(self) -> None:
        """Check every stage's names and files before the first stage runs (not after an hour of evaluation)."""
        import dataclasses

        from guard_eval import plugins
        from guard_eval.selection import resolve_benchmarks
        from guard_train.config import ConfigError, check_keys, read_yaml
        from guard_train.methods import training_methods

        where = getattr(self, "source", "experiment config")
        if self.train is not None and self.prefs is None:
            raise ConfigError(f"{where}: train: needs prefs: (the stage writing the preference pairs it trains on)")
        if self.prefs is not None and self.train is None:
            raise ConfigError(f"{where}: prefs: without train: (nothing would use the pairs)")
        try:
            resolve_benchmarks(self.eval.benchmarks)
        except KeyError as e:
            raise ConfigError(f"{where}: eval: benchmarks: {e.args[0]}") from None
        plugins.lookup(plugins.judges(), self.judge, "judge", lambda m: ConfigError(f"{where}: judge: {m}"))
        for stage in ("sft", "prefs", "train"):
            step = getattr(self, stage)
            if step is None:
                continue
            cls = plugins.lookup(training_methods(), step.method, "training method",
                                 lambda m: ConfigError(f"{where}: {stage}: method: {m}")).config_cls  # fmt: skip
            if step.config is not None:
                if not Path(step.config).is_file():
                    raise ConfigError(f"{where}: {stage}: config: file not found: {step.config}")
                check_keys(cls, read_yaml(step.config), f"{where}: {stage}: config {step.config}")
            if dataclasses.is_dataclass(cls):
                check_keys(cls, step.overrides, f"{where}: {stage}: overrides")


# ---------------------------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    config: ExperimentConfig
    root: Path
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dir(self, stage: str) -> Path:
        return self.root / stage


def stage_base(ctx: Context) -> dict[str, Any]:
    model = ctx.config.model
    if model == "tiny":
        from guard_eval.tiny import build_tiny_model

        model = str(build_tiny_model(ctx.dir("base") / "tiny-model", **ctx.config.tiny))
    else:
        from guard_eval.model_sources import resolve

        model = resolve(model)
    return {"model": model}


def run_method(step: TrainStep, stage_dir: Path, **inputs: Any) -> str:
    """Run a registered training method: its YAML config, then the step's overrides, then the pipeline's inputs."""
    from guard_train.config import load_config
    from guard_train.methods import get_method

    method = get_method(step.method)
    config = load_config(method.config_cls, step.config, {**step.overrides, **inputs, "output_dir": str(stage_dir)})
    return str(method.run(config))


def _train_stage(ctx: Context, step: TrainStep, stage: str, **inputs: Any) -> dict[str, Any]:
    return {"model": run_method(step, ctx.dir(stage), **inputs), "method": step.method}


def stage_sft(ctx: Context) -> dict[str, Any]:
    return _train_stage(ctx, ctx.config.sft, "sft", model=ctx.outputs["base"]["model"])


def _policy(ctx: Context) -> str:
    return (ctx.outputs.get("sft") or ctx.outputs["base"])["model"]


def _evaluate(ctx: Context, stage: str, model: str, name: str) -> dict[str, Any]:
    from guard_eval.generation import GenerationConfig, get_backend
    from guard_eval.modeling import checkpoint_metadata
    from guard_eval.selection import resolve_benchmarks
    from guard_eval.runner import EvalRun

    ev = ctx.config.eval
    results = EvalRun(
        backend=get_backend(ev.backend, model),
        benchmarks=resolve_benchmarks(ev.benchmarks),
        output_dir=ctx.dir(stage),
        model_info={"name": name, "path": model, "metadata": checkpoint_metadata(model)},
        generation=GenerationConfig(max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size),
        prompt_variant=ev.prompt_variant,
        data_dir=ev.data_dir,
        limit=ev.limit,
        sample_seed=ev.sample_seed if ev.limit else None,
        progress=True,
    ).run()
    return {"run": str(ctx.dir(stage)), "name": name, "averages": results["averages"]}


def _judge(ctx: Context, run_stage: str) -> dict[str, Any]:
    from guard_eval.judging.results import judge_run

    summary = judge_run(ctx.outputs[run_stage]["run"], ctx.config.judge)
    return {"reasoning_quality": {k: v for k, v in summary.items() if k != "by_benchmark"}}


def stage_eval_base(ctx: Context) -> dict[str, Any]:
    from guard_eval import plugins

    if "sft" in ctx.outputs:
        name = "sft"
    else:  # a named model (guard-smol-135m-sft) says more in the report than "base"
        name = ctx.config.model if ctx.config.model in plugins.model_sources() else "base"
    return _evaluate(ctx, "eval_base", _policy(ctx), name)


def stage_judge_base(ctx: Context) -> dict[str, Any]:
    return _judge(ctx, "eval_base")


def stage_eval_references(ctx: Context) -> dict[str, Any]:
    """Each reference model on the same items (the zero-shot base next to the guard, say); shown in the report."""
    from guard_eval.model_sources import resolve

    return {"runs": [_evaluate(ctx, f"eval_references/{i}", resolve(m), Path(m).name if Path(m).exists() else m)
                     for i, m in enumerate(ctx.config.references)]}  # fmt: skip


def stage_prefs(ctx: Context) -> dict[str, Any]:
    return {"pairs": run_method(ctx.config.prefs, ctx.dir("prefs"), model=_policy(ctx))}


def stage_train(ctx: Context) -> dict[str, Any]:
    return _train_stage(ctx, ctx.config.train, "train", model=_policy(ctx), data=ctx.outputs["prefs"]["pairs"])


def stage_eval_trained(ctx: Context) -> dict[str, Any]:
    return _evaluate(ctx, "eval_trained", ctx.outputs["train"]["model"], ctx.config.train.method)


def stage_judge_trained(ctx: Context) -> dict[str, Any]:
    return _judge(ctx, "eval_trained")


def _accuracy(averages: dict[str, Any]) -> float:
    """Sample-weighted accuracy over all task types."""
    n = sum(a["n"] for a in averages.values())
    return sum(a["accuracy"] * a["n"] for a in averages.values()) / n if n else 0.0


def check_criteria(ctx: Context) -> list[dict[str, Any]]:
    c = ctx.config.criteria
    base, trained = ctx.outputs["eval_base"], ctx.outputs["eval_trained"]
    acc_b, acc_t = _accuracy(base["averages"]), _accuracy(trained["averages"])
    rq_b = ctx.outputs["judge_base"]["reasoning_quality"]["total"]
    rq_t = ctx.outputs["judge_trained"]["reasoning_quality"]["total"]
    gain = 100.0 * (rq_t - rq_b) / rq_b if rq_b else float("inf") if rq_t > 0 else 0.0
    rows = [
        {"criterion": f"accuracy within +-{c.max_accuracy_change:g} points of base",
         "value": f"{acc_t - acc_b:+.2f} points ({acc_b:.2f} -> {acc_t:.2f})", "met": abs(acc_t - acc_b) <= c.max_accuracy_change},
        {"criterion": f"reasoning quality +{c.min_reasoning_gain_pct:g}%",
         "value": f"{gain:+.1f}% ({rq_b:.2f} -> {rq_t:.2f})", "met": gain >= c.min_reasoning_gain_pct},
    ]  # fmt: skip
    if ctx.config.human_eval_db:
        from guard_eval.human_eval.report import preference_summary

        pref = preference_summary(ctx.config.human_eval_db)
        rows.append({"criterion": f"humans prefer the trained model in >{c.min_human_preference_pct:g}% of items",
                     "value": f"{pref:.1f}%", "met": pref > c.min_human_preference_pct})  # fmt: skip
    return rows


def _runs(ctx: Context, bootstrap: int = 1000):
    from guard_eval.leaderboard import load_runs

    names = {"eval_base": ctx.outputs["eval_base"]["name"], "eval_trained": ctx.outputs.get("eval_trained", {}).get("name")}
    specs = [f"{names[s]}={ctx.outputs[s]['run']}" for s in ("eval_base", "eval_trained") if s in ctx.outputs]
    return load_runs(specs, bootstrap=bootstrap)


def _reference_runs(ctx: Context, bootstrap: int = 1000):
    from guard_eval.leaderboard import load_runs

    refs = ctx.outputs.get("eval_references", {}).get("runs", [])
    return load_runs([f"{r['name']}={r['run']}" for r in refs], bootstrap=bootstrap) if refs else []


def stage_compare(ctx: Context) -> dict[str, Any]:
    from guard_eval.leaderboard import compare_runs
    from guard_eval.leaderboard.compare import to_markdown
    from guard_eval.results.rundir import write_records

    out = ctx.dir("compare")
    out.mkdir(parents=True, exist_ok=True)
    base, trained = _runs(ctx, bootstrap=0)
    comparison = compare_runs(base, trained)
    (out / "compare.md").write_text(to_markdown(comparison))
    write_records(out / "disagreements.jsonl", comparison.disagreements)
    return {"compare": str(out / "compare.md"), "criteria": check_criteria(ctx)}


def stage_report(ctx: Context) -> dict[str, Any]:
    from guard_eval.results import build_table, html_table, markdown_table, render

    out = ctx.dir("report")
    out.mkdir(parents=True, exist_ok=True)
    table = build_table([*_reference_runs(ctx), *_runs(ctx)])
    (out / "leaderboard.png").write_bytes(render(table, "png"))
    (out / "leaderboard.csv").write_text(render(table, "csv"))
    sections: list[tuple[str, list[str], list[list[Any]]]] = []  # (title, header, rows): one source for md and html
    compare_md = Path(ctx.outputs["compare"]["compare"]).read_text() if "compare" in ctx.outputs else None
    criteria = ctx.outputs.get("compare", {}).get("criteria", [])
    if criteria:
        sections.append(("Success criteria", ["criterion", "value", "met"],
                         [[r["criterion"], r["value"], "met" if r["met"] else "NOT met"] for r in criteria]))
    stages = []
    for name, o in ctx.outputs.items():
        m = o.get("_meta", {})
        gpu = f"{m['gpu_max_allocated_gib']:.2f}" if "gpu_max_allocated_gib" in m else ""
        stages.append([name, f"{m.get('wall_s', 0):.1f}", f"{m.get('cpu_max_rss_gib', 0):.2f}", gpu])
    sections.append(("Stages", ["stage", "wall time (s)", "process peak RSS so far (GiB)", "peak GPU allocated (GiB)"],
                     stages))  # fmt: skip
    md = [f"# Experiment report: {ctx.config.name}", "", "## Leaderboard", "", render(table, "md")]
    md += ["## Base vs trained", "", compare_md] if compare_md else []
    md += [part for title, header, rows in sections for part in (f"## {title}", "", markdown_table(header, rows), "")]
    (out / "report.md").write_text("\n".join(md) + "\n")
    html = "".join(f"<h2>{title}</h2>" + html_table(header, rows) for title, header, rows in sections)
    if "compare" in ctx.outputs:
        html = _comparison_html(ctx) + html
    (out / "report.html").write_text(render(table, "html", title=f"{ctx.config.name}: leaderboard", sections=html))
    return {"report": str(out / "report.md"), "html": str(out / "report.html"), "criteria": criteria}


def _comparison_html(ctx: Context) -> str:
    import html

    from guard_eval.leaderboard.compare import compare_runs, table_rows
    from guard_eval.results import html_table

    base, trained = _runs(ctx, bootstrap=0)
    names = html.escape(f"A = {base.name}, B = {trained.name}")
    return f"<h2>Base vs trained</h2><p>{names}</p>" + html_table(*table_rows(compare_runs(base, trained)))


PIPELINE: tuple[tuple[str, Callable[[Context], dict[str, Any]], Callable[[ExperimentConfig], bool]], ...] = (
    ("base", stage_base, lambda c: True),
    ("sft", stage_sft, lambda c: c.sft is not None),
    ("eval_base", stage_eval_base, lambda c: True),
    ("judge_base", stage_judge_base, lambda c: True),
    ("eval_references", stage_eval_references, lambda c: bool(c.references)),
    ("prefs", stage_prefs, lambda c: c.prefs is not None and c.train is not None),
    ("train", stage_train, lambda c: c.prefs is not None and c.train is not None),
    ("eval_trained", stage_eval_trained, lambda c: c.train is not None),
    ("judge_trained", stage_judge_trained, lambda c: c.train is not None),
    ("compare", stage_compare, lambda c: c.train is not None),
    ("report", stage_report, lambda c: True),
)


def run_experiment(
    config: ExperimentConfig, restart_from: str | None = None, log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Run the enabled stages in order, skipping finished ones.

    A config that differs from the one the output dir was started with is an error (cached stages would not match
    it) unless ``restart_from`` names the first stage to redo; that stage and all later ones are then run again.
    """
    import shutil

    from guard_train.training import Measure

    config.validate()
    root = Path(config.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    names = [name for name, _, enabled in PIPELINE if enabled(config)]
    if restart_from is not None and restart_from not in names:
        raise ValueError(f"--restart-from {restart_from!r}: this experiment's stages are {names}")
    saved = root / "experiment.json"
    if saved.exists() and json.loads(saved.read_text()) != json.loads(json.dumps(asdict(config))) and not restart_from:
        raise ValueError(
            f"{root} was started with another config ({saved}); pass --restart-from STAGE to redo that stage and the "
            f"later ones with this config, or use another output_dir"
        )
    if restart_from is not None:
        for name in names[names.index(restart_from) :]:
            shutil.rmtree(root / name, ignore_errors=True)
    saved.write_text(json.dumps(asdict(config), indent=2))
    ctx = Context(config, root)
    for name, fn, enabled in PIPELINE:
        if not enabled(config):
            continue
        marker = ctx.dir(name) / STAGE_FILE
        if marker.exists():
            ctx.outputs[name] = json.loads(marker.read_text())
            log(f"[{name}] done earlier, skipped")
            continue
        log(f"[{name}] running")
        with Measure() as m:
            outputs = fn(ctx)
        gpu = {} if m.gpu_peak_mib is None else {"gpu_max_allocated_gib": m.gpu_peak_mib / 1024}
        outputs["_meta"] = {"wall_s": m.wall_s, "cpu_max_rss_gib": m.peak_rss_mib / 1024, **gpu}
        ctx.outputs[name] = outputs
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(outputs, indent=2, default=str))
        log(f"[{name}] finished in {outputs['_meta']['wall_s']:.1f}s")
    return ctx.outputs


def cmd_experiment(args) -> int:
    config = ExperimentConfig.from_yaml(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    outputs = run_experiment(config, restart_from=args.restart_from)
    report = outputs["report"]
    print(Path(report["report"]).read_text())
    print(f"report: {report['report']} (HTML: {report['html']})")
    return 0


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-train":
        return
    p = subparsers.add_parser("experiment", help="run an experiment pipeline (resumes after the last finished stage)")
    p.add_argument("config", help="experiment YAML (configs/experiments/*.yaml)")
    p.add_argument("--output-dir", help="override output_dir of the config")
    p.add_argument("--restart-from", metavar="STAGE", help="redo STAGE and every later stage (e.g. after editing the config)")
    p.set_defaults(func=cmd_experiment)
