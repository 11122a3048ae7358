"""Pair strategies: which of a prompt's scored samples become DPO pairs (``prefs``'s ``strategy``).

A strategy is registered through ``guard_register_pair_strategies`` as a :class:`PairStrategy` whose ``select(samples,
min_margin=..., **options)`` returns ``(chosen, rejected)`` index pairs into ``samples``; each sample is a dict with
``text``, ``score`` (the weighted rewards), ``rewards``, ``correct`` (the parsed answer equals the gold label; ``None``
when the gold is unknown) and ``model`` (which policy sampled it). Built-ins:

* ``judge``: best vs worst score, when they differ by at least ``min_margin`` (the seed plan);
* ``hard-samples``: GuardReasoner's HS-DPO mining: only prompts on which the samples (of the policy and any
  ``ensemble`` models) disagree on the label; a correct trace (the best-scored one: the judge breaks ties between
  correct traces) against an incorrect one.

Pair weights (``pair_weights``) are computed the same way for every strategy, from the prompt's samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Sample = dict[str, Any]
PairWeighting = Literal["none", "margin", "disagreement", "error_rate"]


@dataclass(frozen=True)
class PairStrategy:
    """What the ``guard_register_pair_strategies`` hook returns."""

    name: str
    select: Callable[..., list[tuple[int, int]]]
    description: str = ""


def _best(samples: Sequence[Sample], indices: Sequence[int]) -> int:
    return min(indices, key=lambda i: (-samples[i]["score"], i))


def _worst(samples: Sequence[Sample], indices: Sequence[int]) -> int:
    return min(indices, key=lambda i: (samples[i]["score"], i))


def judge_pairs(samples: Sequence[Sample], min_margin: float = 0.0, **_: Any) -> list[tuple[int, int]]:
    """Best vs worst score when they differ by at least ``min_margin``.

    >>> judge_pairs([{"score": 0.2}, {"score": 0.9}, {"score": 0.5}], min_margin=0.1)
    [(1, 0)]
    >>> judge_pairs([{"score": 0.5}, {"score": 0.55}], min_margin=0.1)
    []
    """
    everyone = range(len(samples))
    best, worst = _best(samples, everyone), _worst(samples, everyone)
    return [(best, worst)] if samples[best]["score"] - samples[worst]["score"] >= min_margin else []


def hard_sample_pairs(samples: Sequence[Sample], min_margin: float = 0.0, rejected: str = "best",
                      **_: Any) -> list[tuple[int, int]]:  # fmt: skip
    """A correct trace vs an incorrect one, only where the samples disagree on the label. The chosen trace is the
    best-scored correct one; the rejected one the best-scored incorrect one (``rejected: best``, the most convincing
    mistake) or the worst (``rejected: worst``). ``min_margin`` does not apply: correctness orders the pair.

    >>> s = [{"score": 0.4, "correct": True}, {"score": 0.8, "correct": True}, {"score": 0.7, "correct": False},
    ...      {"score": 0.1, "correct": False}]
    >>> hard_sample_pairs(s), hard_sample_pairs(s, rejected="worst")
    ([(1, 2)], [(1, 3)])
    >>> hard_sample_pairs([{"score": 0.9, "correct": True}, {"score": 0.1, "correct": True}])  # all agree
    []
    """
    if rejected not in ("best", "worst"):
        raise ValueError(f"hard-samples: rejected must be 'best' or 'worst', got {rejected!r}")
    right = [i for i, s in enumerate(samples) if s.get("correct") is True]
    wrong = [i for i, s in enumerate(samples) if s.get("correct") is False]
    if not right or not wrong:
        return []
    return [(_best(samples, right), (_best if rejected == "best" else _worst)(samples, wrong))]


def pair_weight(samples: Sequence[Sample], chosen: int, rejected: int, weighting: PairWeighting) -> float:
    """A pair's weight: ``none`` 1; ``margin`` the score difference; ``disagreement`` ``4 p (1 - p)`` with ``p`` the
    share of the prompt's samples that are correct (1 at an even split, 0 when all agree); ``error_rate`` ``1 - p``
    (GuardReasoner's up-weighting of the prompts most samples get wrong).

    >>> s = [{"score": 0.9, "correct": True}, {"score": 0.3, "correct": False}, {"score": 0.2, "correct": False},
    ...      {"score": 0.1, "correct": False}]
    >>> [pair_weight(s, 0, 3, w) for w in ("none", "margin", "disagreement", "error_rate")]
    [1.0, 0.8, 0.75, 0.75]
    """
    if weighting == "none":
        return 1.0
    if weighting == "margin":
        return round(samples[chosen]["score"] - samples[rejected]["score"], 6)
    known = [s["correct"] for s in samples if s.get("correct") is not None]
    p = sum(known) / len(known) if known else 0.5
    if weighting == "disagreement":
        return round(4 * p * (1 - p), 6)
    if weighting == "error_rate":
        return round(1 - p, 6)
    raise ValueError(f"unknown pair weighting {weighting!r}")


BUILTIN_PAIR_STRATEGIES: tuple[PairStrategy, ...] = (
    PairStrategy("judge", judge_pairs, "best vs worst weighted score (margin >= min_margin)"),
    PairStrategy("hard-samples", hard_sample_pairs, "HS-DPO: prompts whose samples disagree on the label; best correct "
                 "vs an incorrect trace (options: rejected: best|worst)"),
)  # fmt: skip


def get_pair_strategy(name: str) -> PairStrategy:
    from guard_eval.plugins import get_plugin_manager, lookup

    return lookup(get_plugin_manager().registry("guard_register_pair_strategies"), name, "pair strategy")
