"""``guard-train prefs``: a preference dataset from a checkpoint's own samples, scored by weighted rewards.

For each labelled prompt the checkpoint samples ``num_samples`` completions (through the guard_eval generation
backend); each is scored ``sum(weight * reward)`` (default ``0.7 reasoning_quality + 0.3 label_accuracy``: the
heuristic judge's reasoning score plus correctness), and the best and worst become a pair when their scores differ by at
least ``min_margin``. Output: ``pairs.jsonl`` (DPO's ``prompt``/``chosen``/``rejected`` plus scores and provenance),
``candidates.jsonl`` (every completion with each reward) and ``guard_bench.json`` (config, model lineage, counts).

``strategy`` picks the registered pair strategy (:mod:`guard_train.pairs`: ``judge`` as above, ``hard-samples`` for
GuardReasoner's HS-DPO mining), ``ensemble`` adds other SFT variants' samples to each prompt's pool, and
``pair_weights`` writes a ``weight`` per pair that ``guard-train dpo`` samples pairs by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard_eval.results.rundir import write_records
from guard_train.config import MethodConfig, check_model, option
from guard_train.pairs import PairWeighting
from guard_train.sampling import SamplingBase


@dataclass(kw_only=True)
class SamplingConfig(SamplingBase):
    """Generation through the guard_eval backends and pair scoring, shared by prefs and refine."""

    num_samples: int = option(4, help="completions sampled per prompt (k)", min=2)
    max_new_tokens: int = option(512, help="tokens per completion", min=1)
    batch_size: int = option(16, help="prompts per generation batch", min=1)
    backend: str = option("auto", help="generation backend (guard-eval plugins lists them)")
    device: str | None = option(None, help="cpu, cuda, cuda:1 ... (hf backend; default: cuda if available)")
    min_margin: float = option(0.1, help="keep a pair only when best - worst score >= this", min=0)


@dataclass(kw_only=True)
class PrefsConfig(SamplingConfig, MethodConfig):
    strategy: str = option("judge", help="pair strategy (registered): judge (best vs worst score) or hard-samples "
                           "(prompts whose samples disagree on the label: correct vs incorrect trace)")  # fmt: skip
    strategy_options: dict[str, Any] = option({}, help="keyword options of the strategy, e.g. {rejected: worst}")
    ensemble: list[str] = option([], help="more models (e.g. SFT variants) whose num_samples samples per prompt join "
                                 "the pool the strategy pairs from")  # fmt: skip
    pair_weights: PairWeighting = option("none", help="a weight per pair: none, margin (score difference), "
                                         "disagreement (4p(1-p), p = share of correct samples), error_rate (1-p)")  # fmt: skip

    def validate(self) -> None:
        from guard_train.pairs import get_pair_strategy

        super().validate()
        self.check_sampling()
        get_pair_strategy(self.strategy)
        for model in self.ensemble:
            check_model(model, "ensemble")


def sample_and_score(model: str, rows: list[dict[str, Any]], cfg: SamplingConfig, num_samples: int,
                     temperature: float, seed: int) -> list[list[dict[str, Any]]]:  # fmt: skip
    """``num_samples`` scored completions per row: ``[{"text", "score", "rewards": {name: value}, "correct", "model"},
    ...]``; ``correct`` is whether the parsed answer equals the gold label (``None`` without a gold label)."""
    from guard_eval.generation import GenerationConfig, get_backend
    from guard_train.rewards import label_accuracy, score_completions

    options = {"device": cfg.device} if cfg.backend in ("hf", "auto") else {}
    backend = get_backend(cfg.backend, model, **options)
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=temperature, top_p=cfg.top_p,
                           num_samples=num_samples, batch_size=cfg.batch_size, seed=seed)  # fmt: skip
    outputs = backend.generate([r["prompt"] for r in rows], gen)
    flat = [(r, text) for r, texts in zip(rows, outputs) for text in texts]
    columns = {k: [r[k] for r, _ in flat] for k in ("task", "gold")}
    totals, parts = score_completions([r["prompt"] for r, _ in flat], [t for _, t in flat], columns, cfg.rewards,
                                      cfg.reward_options)  # fmt: skip
    correct = label_accuracy(None, [t for _, t in flat], **columns)
    scored = [{"text": t, "score": s, "rewards": {n: v[i] for n, v in parts.items()},
               "correct": None if correct[i] is None else correct[i] == 1.0, "model": model}
              for i, ((_, t), s) in enumerate(zip(flat, totals))]  # fmt: skip
    return [scored[i : i + num_samples] for i in range(0, len(scored), num_samples)]


def as_turn(prompt: Any, text: str) -> Any:
    """A completion in the prompt's format: an assistant turn for chat prompts, plain text for raw ones."""
    return text if isinstance(prompt, str) else [{"role": "assistant", "content": text}]


def pair_record(row: dict[str, Any], chosen: dict[str, Any], rejected: dict[str, Any], **provenance: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "benchmark": row["benchmark"], "task": row["task"], "gold": row["gold"],
        "prompt": row["prompt"], "chosen": as_turn(row["prompt"], chosen["text"]),
        "rejected": as_turn(row["prompt"], rejected["text"]), "chosen_score": chosen["score"],
        "rejected_score": rejected["score"], "margin": round(chosen["score"] - rejected["score"], 6),
        "chosen_rewards": chosen["rewards"], "rejected_rewards": rejected["rewards"], "provenance": provenance,
    }  # fmt: skip


def run(cfg: PrefsConfig) -> str:
    """Write the pairs; returns the path of ``pairs.jsonl``."""
    from guard_train.metadata import data_hash, write_metadata
    from guard_train.training import Measure, resolve_model, start

    finished = start(cfg)
    out = Path(cfg.output_dir)
    if finished:
        return str(out / "pairs.jsonl")
    from guard_eval.model_sources import resolve
    from guard_train.pairs import get_pair_strategy, pair_weight

    model = resolve_model(cfg)
    rows = cfg.prompt_rows()
    strategy = get_pair_strategy(cfg.strategy)
    with Measure() as m:
        pools = sample_and_score(model, rows, cfg, cfg.num_samples, cfg.temperature, cfg.seed)
        for j, extra in enumerate(cfg.ensemble, 1):
            more = sample_and_score(resolve(extra), rows, cfg, cfg.num_samples, cfg.temperature, cfg.seed + 1000 * j)
            pools = [a + b for a, b in zip(pools, more)]
    pairs, candidates, disagreeing = [], [], 0
    for row, samples in zip(rows, pools):
        candidates += [{"id": row["id"], "sample": i, **s} for i, s in enumerate(samples)]
        disagreeing += len({s["correct"] for s in samples} - {None}) > 1
        for chosen, rejected in strategy.select(samples, min_margin=cfg.min_margin, **cfg.strategy_options):
            pair = pair_record(row, samples[chosen], samples[rejected], model=cfg.model, strategy=cfg.strategy,
                               chosen_sample=chosen, rejected_sample=rejected, chosen_model=samples[chosen]["model"],
                               rejected_model=samples[rejected]["model"])  # fmt: skip
            pairs.append({**pair, "weight": pair_weight(samples, chosen, rejected, cfg.pair_weights)})
    write_records(out / "pairs.jsonl", pairs)
    write_records(out / "candidates.jsonl", candidates)
    scores = [c["score"] for c in candidates]
    stats = {"prompts": len(rows), "pairs": len(pairs), "completions": len(candidates),
             "mean_score": round(sum(scores) / len(scores), 4) if scores else None,
             "mean_margin": round(sum(p["margin"] for p in pairs) / len(pairs), 4) if pairs else None,
             "prompts_with_label_disagreement": disagreeing, "strategy": cfg.strategy,
             "completions_per_s": round(len(candidates) / m.wall_s, 3), **m.metrics()}  # fmt: skip
    write_metadata(out, "prefs", model, cfg.to_dict(), {"benchmarks": cfg.benchmarks, "n": len(pairs),
                   "hash": data_hash(pairs)}, stats, pairs_file=str(out / "pairs.jsonl"))  # fmt: skip
    print(f"{len(pairs)} pairs from {len(rows)} prompts (mean margin {stats['mean_margin']}): {out / 'pairs.jsonl'}")
    return str(out / "pairs.jsonl")
