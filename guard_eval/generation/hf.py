"""The HF transformers backend: length-sorted, left-padded batches through :mod:`~guard_eval.generation.fast_decode`.

The static-cache loop gives the same greedy tokens as ``model.generate`` and is several times faster on GPU
(docs/performance.md); models it does not support (sliding-window attention, unknown architectures), and
``fast=False``, go through plain ``generate``.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from guard_eval.generation import GenerationConfig, Prompt
from guard_eval.modeling import load_model, load_tokenizer


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """Chat messages through the tokenizer's chat template; raw text as is."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "this tokenizer has no chat template; use --prompt-variant raw for base models and GuardReasoner checkpoints"
        )
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def add_special_tokens(prompts: Sequence[Prompt]) -> bool:
    """Whether to tokenize with the tokenizer's special tokens: chat templates already carry the BOS token, raw
    prompts get them. Every local backend follows this, so they all see the same token ids."""
    return not any(isinstance(p, list) for p in prompts)


def encode_batch(tokenizer, texts: list[str], add_special_tokens: bool, per_thread: int = 16) -> list[list[int]]:
    """``tokenizer(texts, add_special_tokens=...)["input_ids"]``, on every core: a fast tokenizer's Rust encoder runs
    over slices of ``texts`` in threads (it releases the GIL), so it does not run on one core when
    ``TOKENIZERS_PARALLELISM=false`` (512 guard prompts: 214 ms of a 1.89 s throughput run on the H200 host), and
    without the character offsets nobody reads (``encode_batch_fast``: a third less time on one core).
    Tokenizers with truncation or padding set on their backend, and slow ones, go through the tokenizer itself."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    threads = min(os.cpu_count() or 1, len(texts) // per_thread)
    if backend is None or backend.truncation or backend.padding or threads < 2:
        return tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # (older tokenizers lack the first)
    size = -(-len(texts) // threads)

    def ids(start: int) -> list[list[int]]:
        return [encoding.ids for encoding in encode(texts[start : start + size], add_special_tokens=add_special_tokens)]

    with ThreadPoolExecutor(threads) as pool:
        return [row for part in pool.map(ids, range(0, len(texts), size)) for row in part]


def left_padded(ids: list[list[int]], pad_token_id: int):
    """``input_ids``/``attention_mask`` tensors of ``ids`` left-padded to the longest, as the tokenizer would pad them
    (the prompts are tokenized once, for sorting, and not again per batch). Built in numpy from one flat array:
    nested lists through ``torch.tensor`` took 10 ms for a 256-row batch."""
    import numpy as np
    import torch
    from transformers import BatchEncoding

    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    width = int(lengths.max()) if len(ids) else 0
    mask = np.arange(width) >= (width - lengths)[:, None]
    input_ids = np.full((len(ids), width), pad_token_id, dtype=np.int64)
    input_ids[mask] = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    attention_mask = torch.from_numpy(mask.astype(np.int64))
    return BatchEncoding({"input_ids": torch.from_numpy(input_ids), "attention_mask": attention_mask})


def decode_batch(tokenizer, ids: list[list[int]]) -> list[str]:
    """``tokenizer.batch_decode(ids, skip_special_tokens=True)``, in one call to a fast tokenizer's Rust decoder when
    it does no clean-up (batch_decode type-checks every id in Python first: 12 of 127 s of a 10M-token suite's host
    time on a CPU)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer.clean_up_tokenization_spaces:
        return tokenizer.batch_decode(ids, skip_special_tokens=True)
    return backend.decode_batch(ids, skip_special_tokens=True)


def eos_token_ids(model, tokenizer) -> list[int]:
    """The ids ``generate`` stops at: the generation config's, else the model config's, else the tokenizer's."""
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        eos = getattr(source, "eos_token_id", None)
        if eos is not None:
            return [eos] if isinstance(eos, int) else list(eos)
    return []


class HFBackend:
    """Options: ``device``, ``dtype`` (bf16 on GPU by default), ``fast`` (the static-cache loop; default on),
    ``cuda_graphs`` (default: on CUDA), ``compile`` (``torch.compile`` the decode step; default off),
    ``fused_kernels`` (Liger's fused RMSNorm/rotary/SwiGLU in the fast loop; default: on CUDA when ``liger-kernel``
    is installed, ``false`` turns them off), ``fused_projections`` (one GEMM for each layer's q/k/v and one for
    gate/up in the fast loop; default: on CUDA, ``false`` turns it off), ``decode_attention`` (``triton``: decode
    attention reads only each row's attended cache blocks; ``sdpa``; default: Triton on CUDA when installed),
    ``fused_layers`` (the loop's own decode-step forward: residual adds fused into the norms, rotary, cache write
    and attention in one kernel; default: on with the Triton attention, ``false`` turns it off), ``packed_prefill`` (prefill
    prompts packed without padding, attended with flash varlen; default: on CUDA in bf16/fp16 when torch has it,
    ``false`` turns it off), ``max_batch_tokens`` (a batch
    holds at most this many KV-cache slots, rows x (prompt + new tokens) x samples: long prompts get fewer rows than
    ``batch_size``; default on CUDA: half the device memory free when the backend is built, over a slot's bytes),
    ``continuous`` (continuous batching for one completion per prompt: a row whose answer ended takes the next prompt
    at once instead of idling until its batch's longest answer ends; default off: through ``guard-eval run``,
    length-sorted batches over the whole run measured faster (docs/performance.md, rounds 9 and 10); ``true`` turns
    it on; several samples per prompt and forced lengths, ``ignore_eos``, always go batch by batch)."""

    name = "hf"

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str | None = None,
        fast: bool = True,
        cuda_graphs: bool | None = None,
        compile: bool = False,
        fused_kernels: bool | None = None,
        fused_projections: bool | None = None,
        decode_attention: str | None = None,
        fused_layers: bool | None = None,
        packed_prefill: bool | None = None,
        max_batch_tokens: int | None = None,
        continuous: bool = False,
        **_: object,
    ) -> None:
        self.model_path = model
        model_obj = load_model(model, device=device, dtype=dtype)
        self._attach(model_obj, load_tokenizer(model), fast, cuda_graphs=cuda_graphs, compile=compile,
                     fused_kernels=fused_kernels, fused_projections=fused_projections,
                     decode_attention=decode_attention, fused_layers=fused_layers, packed_prefill=packed_prefill,
                     max_batch_tokens=max_batch_tokens, continuous=continuous)  # fmt: skip

    @classmethod
    def from_loaded(cls, model, tokenizer, *, fast: bool = True, **decoder_options) -> HFBackend:
        """A backend around a model already in memory (benchmarks share one model between backends)."""
        backend = cls.__new__(cls)
        backend.model_path = getattr(model, "name_or_path", "")
        backend._attach(model, tokenizer, fast, **decoder_options)
        return backend

    def _attach(self, model, tokenizer, fast: bool, max_batch_tokens: int | None = None,
                continuous: bool = False, **decoder_options) -> None:  # fmt: skip
        if max_batch_tokens is not None and (isinstance(max_batch_tokens, bool) or not isinstance(max_batch_tokens, int)
                                             or max_batch_tokens < 1):  # fmt: skip
            raise ValueError(f"max_batch_tokens must be a positive number of cache slots, got {max_batch_tokens!r}")
        switches = {"fast": fast, "continuous": continuous, **decoder_options}
        for name in ("fast", "continuous", "cuda_graphs", "compile", "fused_kernels", "fused_projections",
                     "fused_layers", "packed_prefill"):  # fmt: skip
            if switches.get(name) not in (None, True, False):  # a typo such as continuous=flase must not read as on
                raise ValueError(f"backend option {name} must be true or false, got {switches[name]!r}")
        self.model, self.tokenizer = model, tokenizer
        self.decoder = None
        self.queue_ahead = False  # queue a batch before finishing the previous one: the fast loop on a GPU
        self.max_batch_tokens = max_batch_tokens
        self.continuous = False
        if not fast:
            return
        from guard_eval.generation.fast_decode import StaticDecoder, unsupported_reason

        reason = unsupported_reason(model)
        if reason:
            warnings.warn(f"{self.model_path}: {reason}; generating with plain transformers generate", stacklevel=3)
            return
        self.decoder = StaticDecoder(
            model,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_ids=eos_token_ids(model, tokenizer),
            **decoder_options,
        )
        self.max_batch_tokens = max_batch_tokens or self.decoder.cache_token_budget()
        self.continuous = bool(continuous)
        self.queue_ahead = self.decoder.device.type == "cuda"

    @property
    def device(self):
        return self.model.device

    def generate(
        self, prompts: Sequence[Prompt], config: GenerationConfig, *, ignore_eos: bool = False
    ) -> list[list[str]]:
        """``ignore_eos`` forces ``max_new_tokens`` tokens per completion (throughput benchmarks)."""
        out: list[list[str]] = [[] for _ in prompts]
        for i, texts in self.stream(prompts, config, ignore_eos=ignore_eos):
            out[i] = texts
        return out

    def stream(
        self, prompts: Sequence[Prompt], config: GenerationConfig, *, ignore_eos: bool = False
    ) -> Iterator[tuple[int, list[str]]]:
        """Each prompt's ``(index, completions)`` as soon as they are done: a batch at a time, or with continuous
        batching a few rows at a time. Prompts are decoded longest first, so similar lengths share a batch."""
        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        encoded = encode_batch(self.tokenizer, texts, add_special_tokens(prompts))
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
        if self.continuous and config.num_samples == 1 and not ignore_eos:  # forced lengths: no row ends early
            yield from self._stream_continuous(encoded, order, config)
            return
        # On a GPU a batch is finished (copied off, decoded, yielded) after the next one is queued: the device works
        # on the next batch while the host decodes this one and the caller takes its completions. Elsewhere a launch
        # computes the whole batch, so waiting would only hold finished completions back from the caller.
        ahead = 1 if self.queue_ahead else 0  # launched batches left unfinished while the next one is queued
        start, pending = 0, []
        while start < len(order):
            rows = config.batch_size  # fewer when the batch's KV cache would pass max_batch_tokens (longest first)
            if self.max_batch_tokens:
                slots = (len(encoded[order[start]]) + config.max_new_tokens) * config.num_samples
                rows = max(1, min(rows, self.max_batch_tokens // slots))
            idx = order[start : start + rows]
            enc = left_padded([encoded[i] for i in idx], self.tokenizer.pad_token_id)
            try:  # A different seed per batch: otherwise every batch would draw the same random stream.
                pending.append((idx, self._launch(enc, config, seed=config.seed + start, ignore_eos=ignore_eos)))
            except BaseException:
                for batch in pending:  # what is already generated still reaches the caller
                    yield from self._finish(*batch, config)
                raise
            start += rows
            while len(pending) > ahead:
                yield from self._finish(*pending.pop(0), config)
        for batch in pending:
            yield from self._finish(*batch, config)

    def _finish(self, idx: list[int], launched, config: GenerationConfig) -> Iterator[tuple[int, list[str]]]:
        new = decode_batch(self.tokenizer, launched.result().tolist())
        for j, i in enumerate(idx):
            yield i, new[j * config.num_samples : (j + 1) * config.num_samples]

    def _stream_continuous(self, encoded, order, config: GenerationConfig) -> Iterator[tuple[int, list[str]]]:
        """Continuous batching over runs of prompts that fit the same number of rows (longest first: a run's ring
        cache is as long as its longest prompt plus the answer, and ``max_batch_tokens`` caps rows x that length)."""
        decoder = self.decoder
        ring = config.max_new_tokens + decoder.check_every + 1  # the ring's slots past a prompt

        def rows_for(i: int) -> int:
            if not self.max_batch_tokens:
                return config.batch_size
            length = -(-(len(encoded[i]) + ring) // decoder.bucket) * decoder.bucket
            return max(1, min(config.batch_size, self.max_batch_tokens // length))

        start = 0
        while start < len(order):
            rows = rows_for(order[start])
            stop = start + 1
            while stop < len(order) and rows_for(order[stop]) == rows:
                stop += 1
            idx = order[start:stop]
            for finished in decoder.stream_continuous(
                [encoded[i] for i in idx], rows=rows, max_new_tokens=config.max_new_tokens,
                temperature=config.temperature if config.temperature > 0 else 0.0, top_p=config.top_p,
                seed=config.seed + start,
            ):  # fmt: skip
                texts = decode_batch(self.tokenizer, [tokens for _, tokens in finished])
                for (j, _), text in zip(finished, texts):
                    yield idx[j], [text]
            start = stop

    def _launch(self, enc, config: GenerationConfig, seed: int, ignore_eos: bool):
        """The batch's new ids, as :class:`~guard_eval.generation.fast_decode.HostCopy` (their ``result()``)."""
        import torch

        from guard_eval.generation.fast_decode import HostCopy

        sampling = config.temperature > 0
        if self.decoder is not None:
            return self.decoder.launch(
                enc["input_ids"], enc["attention_mask"], max_new_tokens=config.max_new_tokens,
                num_samples=config.num_samples, temperature=config.temperature if sampling else 0.0,
                top_p=config.top_p, seed=seed, ignore_eos=ignore_eos,
            )  # fmt: skip
        torch.manual_seed(seed)
        enc = enc.to(self.device)
        with torch.inference_mode():
            gen = self.model.generate(
                **enc,
                max_new_tokens=config.max_new_tokens,
                min_new_tokens=config.max_new_tokens if ignore_eos else None,
                do_sample=sampling,
                temperature=config.temperature if sampling else None,
                top_p=config.top_p if sampling else None,
                num_return_sequences=config.num_samples,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return HostCopy(gen[:, enc["input_ids"].shape[1] :])
