"""The LLM judge: a model reads the rubric, the conversation and the trace, and answers with three scores as JSON.

Any model works: a local HF checkpoint (through the ``hf`` generation backend) or an Inspect model name
(``openai/gpt-4o-mini``, ``anthropic/...``, ``hf/<hub id>``, ``mockllm/model``: whatever ``inspect_ai.model.get_model``
accepts, with its API key in the environment). Correctness is not asked of the model (rubric.correctness).

An answer that does not parse is asked again, up to ``retries`` more times, sampling (temperature 0.7) so that a retry
can differ from the greedy first try; a trace still unparsed after that gets a :class:`JudgeScore` whose ``error``
says why and whose ``raw`` holds the judge's last answer, and summaries count it instead of averaging it as 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guard_eval.judging import JudgeInput, JudgeScore
from guard_eval.judging.rubric import correctness, judge_prompt, parse_judge_answer


@dataclass
class LLMJudge:
    model: str | None = None  # a local HF model dir, or an Inspect model name such as "openai/gpt-4o-mini"
    backend: Literal["auto", "hf", "inspect"] = "auto"  # auto: a local dir is hf, anything else an Inspect name
    retries: int = 2  # extra attempts for answers that do not parse
    max_new_tokens: int = 200
    retry_temperature: float = 0.7
    batch_size: int = 8
    device: str | None = None  # hf only
    model_args: dict[str, Any] = field(default_factory=dict)  # passed to inspect_ai.model.get_model
    name: str = "llm"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("the llm judge needs a model: --judge-option model=HF_DIR or model=openai/gpt-4o-mini")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backend == "auto":
            self.backend = "hf" if Path(self.model).expanduser().exists() else "inspect"
        if self.backend not in ("hf", "inspect"):
            raise ValueError(f"llm judge backend must be auto, hf or inspect, got {self.backend!r}")
        self._generator: Any = None

    # -- generation --------------------------------------------------------------------------------------------------

    def _generate_hf(self, prompts: list[str], temperature: float, seed: int) -> list[str]:
        from guard_eval.generation import GenerationConfig, get_backend

        if self._generator is None:
            self._generator = get_backend("hf", str(Path(self.model).expanduser()), device=self.device)
        chat = bool(getattr(getattr(self._generator, "tokenizer", None), "chat_template", None))
        inputs = [[{"role": "user", "content": p}] for p in prompts] if chat else prompts
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=temperature,
                                  batch_size=self.batch_size, seed=seed)  # fmt: skip
        return [outs[0] for outs in self._generator.generate(inputs, config)]

    async def _generate_inspect(self, prompts: list[str], temperature: float, seed: int) -> list[str]:
        from guard_eval.generation import GenerationConfig, get_backend

        if self._generator is None:
            self._generator = get_backend("inspect", self.model, **self.model_args)
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=temperature, seed=seed)
        # An API error on one trace is that trace's judge error.
        outputs = await self._generator.agenerate(
            prompts, config, on_error=lambda e: f"<judge model error: {type(e).__name__}: {e}>"
        )
        return [outs[0] for outs in outputs]

    # -- scoring -----------------------------------------------------------------------------------------------------

    async def ascore(self, items: Sequence[JudgeInput]) -> list[JudgeScore]:
        """:meth:`score` for callers already inside an event loop (the Inspect scorer)."""
        return await self._score(items)

    def score(self, items: Sequence[JudgeInput]) -> list[JudgeScore]:
        return asyncio.run(self._score(items))

    async def _score(self, items: Sequence[JudgeInput]) -> list[JudgeScore]:
        prompts = [judge_prompt(item) for item in items]
        parsed: dict[int, dict[str, float]] = {}
        last: dict[int, tuple[str, str]] = {}  # index -> (answer, why it did not parse)
        pending = list(range(len(items)))
        for attempt in range(1 + self.retries):
            if not pending:
                break
            temperature = 0.0 if attempt == 0 else self.retry_temperature
            batch = [prompts[i] for i in pending]
            if self.backend == "hf":
                answers = self._generate_hf(batch, temperature, seed=attempt)
            else:
                answers = await self._generate_inspect(batch, temperature, seed=attempt)
            still = []
            for i, answer in zip(pending, answers):
                try:
                    parsed[i] = parse_judge_answer(answer)
                    last[i] = (answer, "")
                except ValueError as e:
                    last[i] = (answer, str(e))
                    still.append(i)
            pending = still
        scores = []
        for i, item in enumerate(items):
            answer, why = last[i]
            if i in parsed:
                scores.append(JudgeScore(correctness(item), **parsed[i], raw=answer))
            else:
                attempts = 1 + self.retries
                scores.append(JudgeScore(0.0, 0.0, 0.0, 0.0, raw=answer,
                                         error=f"judge answer unusable after {attempts} attempt(s): {why}"))  # fmt: skip
        return scores
