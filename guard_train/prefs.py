"""``guard-train prefs``: a preference dataset from a checkpoint's own samples, scored by weighted rewards.

For each labelled prompt the checkpoint samples ``num_samples`` completions (through the guard_eval generation
backend); each is scored ``sum(weight * reward)`` (default ``0.7 reasoning_quality + 0.3 label_accuracy``: the
heuristic judge's reasoning score plus correctness), and the best and worst become a pair when their scores differ by at
least ``min_margin``. Output: ``pairs.jsonl`` (DPO's ``prompt``/``chosen``/``rejected`` plus scores and provenance),
``candidates.jsonl`` (every completion with each reward) and ``guard_bench.json`` (config, model lineage, counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard_eval.prompting import PromptVariant
from guard_train.config import MethodConfig, option


@dataclass(kw_only=True)
class SamplingConfig:
    """Prompts, sampling and scoring options shared by prefs and refine."""

    benchmarks: list[str] = option(["demo"], help="labelled prompts: benchmark or suite names")
    data_dir: str | None = option(None, help="data directory (default: $GUARD_DATA_DIR)")
    limit: int | None = option(None, help="at most N prompts per benchmark (a seeded random subset)", min=1)
    prompt_variant: PromptVariant = option("chat", help="prompt format: chat, system or raw")
    num_samples: int = option(4, help="completions sampled per prompt (k)", min=2)
    temperature: float = option(0.9, help="sampling temperature", min=0)
    top_p: float = option(1.0, help="nucleus sampling", min=0)
    max_new_tokens: int = option(512, help="tokens per completion", min=1)
    batch_size: int = option(16, help="prompts per generation batch", min=1)
    backend: str = option("auto", help="generation backend (guard-eval plugins lists them)")
    device: str | None = option(None, help="cpu, cuda, cuda:1 ... (hf backend; default: cuda if available)")
    rewards: dict[str, float] = option({"reasoning_quality": 0.7, "label_accuracy": 0.3},
                                       help="score = sum(weight * reward) over these registered rewards")  # fmt: skip
    reward_options: dict[str, dict[str, Any]] = option({}, help="keyword options per reward, e.g. "
                                                       "{reasoning_quality: {judge: llm, judge_options: {model: M}}}")  # fmt: skip
    min_margin: float = option(0.1, help="keep a pair only when best - worst score >= this", min=0)

    def check_sampling(self) -> None:
        from guard_eval.selection import resolve_benchmarks
        from guard_train.rewards import get_rewards

        resolve_benchmarks(self.benchmarks)
        get_rewards(list(self.rewards))
        unknown = sorted(set(self.reward_options) - set(self.rewards))
        if unknown:
            raise KeyError(f"reward_options for {unknown}, which are not in rewards {sorted(self.rewards)}")


@dataclass(kw_only=True)
class PrefsConfig(SamplingConfig, MethodConfig):
    def validate(self) -> None:
        super().validate()
        self.check_sampling()


def sample_and_score(model: str, rows: list[dict[str, Any]], cfg: SamplingConfig, num_samples: int,
                     temperature: float, seed: int) -> list[list[dict[str, Any]]]:  # fmt: skip
    """``num_samples`` scored completions per row: ``[{"text", "score", "rewards": {name: value}}, ...]``."""
    from guard_eval.generation import GenerationConfig, get_backend
    from guard_train.rewards import score_completions

    options = {"device": cfg.device} if cfg.backend in ("hf", "auto") else {}
    backend = get_backend(cfg.backend, model, **options)
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=temperature, top_p=cfg.top_p,
                           num_samples=num_samples, batch_size=cfg.batch_size, seed=seed)  # fmt: skip
    outputs = backend.generate([r["prompt"] for r in rows], gen)
    flat = [(r, text) for r, texts in zip(rows, outputs) for text in texts]
    columns = {k: [r[k] for r, _ in flat] for k in ("task", "gold")}
    totals, parts = score_completions([r["prompt"] for r, _ in flat], [t for _, t in flat], columns, cfg.rewards,
                                      cfg.reward_options)  # fmt: skip
    scored = [{"text": t, "score": s, "rewards": {n: v[i] for n, v in parts.items()}}
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


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def run(cfg: PrefsConfig) -> str:
    """Write the pairs; returns the path of ``pairs.jsonl``."""
    from guard_train.data import load_samples, prompt_rows
    from guard_train.metadata import data_hash, write_metadata
    from guard_train.training import Measure, resolve_model, start

    finished = start(cfg)
    out = Path(cfg.output_dir)
    if finished:
        return str(out / "pairs.jsonl")
    model = resolve_model(cfg)
    rows = prompt_rows(load_samples(cfg.benchmarks, cfg.data_dir, cfg.limit, cfg.seed), cfg.prompt_variant)
    with Measure() as m:
        scored = sample_and_score(model, rows, cfg, cfg.num_samples, cfg.temperature, cfg.seed)
    pairs, candidates = [], []
    for row, samples in zip(rows, scored):
        order = sorted(range(len(samples)), key=lambda i: (-samples[i]["score"], i))
        best, worst = order[0], order[-1]
        candidates += [{"id": row["id"], "sample": i, **s} for i, s in enumerate(samples)]
        if samples[best]["score"] - samples[worst]["score"] >= cfg.min_margin:
            pairs.append(pair_record(row, samples[best], samples[worst], model=cfg.model, chosen_sample=best,
                                     rejected_sample=worst))  # fmt: skip
    write_jsonl(out / "pairs.jsonl", pairs)
    write_jsonl(out / "candidates.jsonl", candidates)
    scores = [c["score"] for c in candidates]
    stats = {"prompts": len(rows), "pairs": len(pairs), "completions": len(candidates),
             "mean_score": round(sum(scores) / len(scores), 4) if scores else None,
             "mean_margin": round(sum(p["margin"] for p in pairs) / len(pairs), 4) if pairs else None,
             "completions_per_s": round(len(candidates) / m.wall_s, 3), **m.metrics()}  # fmt: skip
    write_metadata(out, "prefs", model, cfg.to_dict(), {"benchmarks": cfg.benchmarks, "n": len(pairs),
                   "hash": data_hash(pairs)}, stats, pairs_file=str(out / "pairs.jsonl"))  # fmt: skip
    print(f"{len(pairs)} pairs from {len(rows)} prompts (mean margin {stats['mean_margin']}): {out / 'pairs.jsonl'}")
    return str(out / "pairs.jsonl")
