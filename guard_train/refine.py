"""``guard-train refine``: iterative refinement, N rounds of generate -> judge -> regenerate -> train.

Each round the current policy answers every prompt once (greedy by default); answers scoring below ``threshold``
(the weighted rewards of prefs, default 0.7 reasoning judge + 0.3 correctness) are regenerated ``num_samples`` times,
and the best regeneration that beats the original by ``min_margin`` becomes a DPO pair (refined = chosen, original =
rejected). DPO on the round's pairs gives the next round's policy. ``OUTPUT_DIR/round-<r>/`` holds the round's
candidates, pairs, model and ``round.json``; ``refine_log.jsonl`` has one line per round; the final policy is copied
to ``OUTPUT_DIR``. A re-run resumes after the last finished round.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard_train.config import option
from guard_train.dpo import DpoLoss
from guard_train.prefs import SamplingConfig
from guard_train.training import TrainConfig


@dataclass(kw_only=True)
class RefineConfig(SamplingConfig, TrainConfig):
    rounds: int = option(2, help="refinement rounds (each trains one DPO step on its refined pairs)", min=1)
    threshold: float = option(0.6, help="regenerate answers whose score is below this", min=0)
    initial_temperature: float = option(0.0, help="temperature of each round's first answer (0: greedy)", min=0)
    beta: float = option(0.1, help="DPO beta of each round's training", min=0)
    loss_type: DpoLoss | list[DpoLoss] = option("sigmoid", help="TRL DPO loss of each round (or a list)")
    sft_weight: float = option(0.0, help="weight of the sft term in each round's DPO (0: none)", min=0)
    learning_rate: float = option(5e-6, help="peak learning rate of each round's DPO", min=0)

    def validate(self) -> None:
        super().validate()
        self.check_sampling()


def _dpo_config(cfg: RefineConfig, model: str, pairs: Path, output_dir: Path):
    from guard_train.dpo import DpoConfig

    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainConfig)}
    return DpoConfig(**{**shared, "model": model, "output_dir": str(output_dir), "data": str(pairs), "beta": cfg.beta,
                        "loss_type": cfg.loss_type, "sft_weight": cfg.sft_weight, "overwrite": False, "seed": cfg.seed})  # fmt: skip


def refine_round(cfg: RefineConfig, r: int, model: str, rows: list[dict[str, Any]], round_dir: Path) -> dict[str, Any]:
    """One round; returns its log entry (``model_out`` is None when no answer could be refined)."""
    from guard_train.dpo import run as run_dpo
    from guard_eval.results.rundir import write_records
    from guard_train.prefs import pair_record, sample_and_score

    round_dir.mkdir(parents=True, exist_ok=True)
    first = [s[0] for s in sample_and_score(model, rows, cfg, 1, cfg.initial_temperature, cfg.seed + r)]
    below = [i for i, s in enumerate(first) if s["score"] < cfg.threshold]
    regenerated = sample_and_score(model, [rows[i] for i in below], cfg, cfg.num_samples, cfg.temperature,
                                   cfg.seed + 1000 + r) if below else []  # fmt: skip
    pairs, candidates, after = [], [], [s["score"] for s in first]
    for i, samples in zip(below, regenerated):
        best = max(range(len(samples)), key=lambda j: (samples[j]["score"], -j))
        candidates.append({"id": rows[i]["id"], "original": first[i], "regenerated": samples})
        if samples[best]["score"] - first[i]["score"] >= cfg.min_margin:
            pairs.append(pair_record(rows[i], samples[best], first[i], model=model, round=r, chosen_sample=best))
            after[i] = samples[best]["score"]
    write_records(round_dir / "pairs.jsonl", pairs)
    write_records(round_dir / "candidates.jsonl", candidates)
    entry: dict[str, Any] = {
        "round": r, "model_in": model, "prompts": len(rows), "mean_score": round(sum(s["score"] for s in first) / len(rows), 4),
        "below_threshold": len(below), "refined_pairs": len(pairs),
        "mean_score_after_refinement": round(sum(after) / len(rows), 4),
        "mean_label_accuracy": _mean([s["rewards"].get("label_accuracy") for s in first]), "model_out": None,
    }  # fmt: skip
    if pairs:
        entry["model_out"] = run_dpo(_dpo_config(cfg, model, round_dir / "pairs.jsonl", round_dir / "model"))
        metrics = json.loads(Path(entry["model_out"], "guard_bench.json").read_text())["metrics"]
        entry["train"] = {k: metrics.get(k) for k in ("steps", "train_loss", "steps_per_s", "wall_s")}
    (round_dir / "round.json").write_text(json.dumps(entry, indent=2))
    return entry


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def run(cfg: RefineConfig) -> str:
    from guard_train.metadata import data_hash, write_metadata
    from guard_train.training import Measure, resolve_model, start

    finished = start(cfg)
    if finished:
        return finished
    out = Path(cfg.output_dir)
    base = resolve_model(cfg)
    rows = cfg.prompt_rows()
    log, model = [], base
    with Measure() as m:
        for r in range(1, cfg.rounds + 1):
            marker = out / f"round-{r}" / "round.json"
            entry = json.loads(marker.read_text()) if marker.is_file() else refine_round(cfg, r, model, rows, marker.parent)
            log.append(entry)
            print(f"[refine] round {r}: mean score {entry['mean_score']}, {entry['below_threshold']} below "
                  f"{cfg.threshold}, {entry['refined_pairs']} refined pairs")  # fmt: skip
            if entry["model_out"] is None:
                break
            model = entry["model_out"]
    (out / "refine_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    if model == base:
        raise RuntimeError(f"refine: round 1 refined no answer (threshold {cfg.threshold}, min_margin {cfg.min_margin}); "
                           f"nothing was trained. Log: {out / 'refine_log.jsonl'}")  # fmt: skip
    for item in Path(model).iterdir():  # the final policy becomes OUTPUT_DIR's checkpoint
        if item.is_file() and item.name != "guard_bench.json":
            shutil.copy2(item, out / item.name)
        elif item.name == "merged":
            shutil.copytree(item, out / "merged", dirs_exist_ok=True)
    final = json.loads(Path(model, "guard_bench.json").read_text())
    metrics = {"rounds": log, **m.metrics()}
    write_metadata(out, "refine", base, cfg.to_dict(), {"benchmarks": cfg.benchmarks, "n": len(rows),
                   "hash": data_hash(rows)}, metrics, adapter=final.get("adapter"), final_round=log[-1]["round"])  # fmt: skip
    return str(out)
