"""The fast HF backend: the static-cache decode loop gives plain ``generate``'s greedy tokens (mixed prompt lengths,
EOS mid-batch, cache buckets crossed, shared prefixes), and samples with the right shapes, distribution and seeding."""

from __future__ import annotations

import itertools
import weakref
from types import SimpleNamespace

import pytest
import torch

from guard_eval.generation import GenerationConfig, get_backend
from guard_eval.generation.fast_decode import (
    StaticDecoder,
    choose_tokens,
    unsupported_reason,
)
from guard_eval.generation.hf import HFBackend

PAD, BOS, EOS, VOCAB = 0, 1, 2, 97


@pytest.fixture(scope="module")
def sharp_model():
    """A 2-layer GQA Llama whose large random weights make the argmax depend on the context (varied outputs)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model


def left_padded(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(3, VOCAB, (len(lengths), width), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, width - n :] = 1
    return ids.masked_fill(mask == 0, PAD), mask


def plain_generate(model, ids, mask, max_new_tokens, eos):
    model.generation_config.eos_token_id = eos
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=PAD)  # fmt: skip
    return out[:, ids.shape[1] :]


@pytest.mark.parametrize("bucket", [4, 128])  # 4: the decode crosses many attended-length buckets
@pytest.mark.parametrize("lengths", [[12], [12, 7, 3, 12, 1]])
def test_greedy_tokens_equal_plain_generate(sharp_model, lengths, bucket):
    ids, mask = left_padded(lengths)
    reference = plain_generate(sharp_model, ids, mask, 30, eos=None)
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], bucket=bucket)
    assert torch.equal(decoder.generate(ids, mask, max_new_tokens=30), reference)


def test_rows_stop_at_eos_like_generate(sharp_model):
    ids, mask = left_padded([12, 7, 3, 12, 9])
    free = plain_generate(sharp_model, ids, mask, 40, eos=None)
    eos = int(free[0, 5])  # a token some rows emit mid-way: those rows stop there, the others run on
    reference = plain_generate(sharp_model, ids, mask, 40, eos=eos)
    assert (reference == PAD).any(), "the chosen EOS should end at least one row early"
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[eos], check_every=4)
    out = decoder.generate(ids, mask, max_new_tokens=40)
    width = reference.shape[1]
    assert torch.equal(out[:, :width], reference)
    assert (out[:, width:] == PAD).all()


def test_all_rows_finished_stops_early(sharp_model):
    ids, mask = left_padded([6, 6])
    first = plain_generate(sharp_model, ids, mask, 1, eos=None)[:, 0].tolist()
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=first, check_every=4)
    out = decoder.generate(ids, mask, max_new_tokens=100)
    assert out.shape[1] == 4  # stopped at the first check instead of running 100 steps
    assert (out[:, 1:] == PAD).all()


def test_ignore_eos_forces_the_length(sharp_model):
    ids, mask = left_padded([6, 4])
    first = plain_generate(sharp_model, ids, mask, 1, eos=None)[:, 0].tolist()
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=first)
    assert decoder.generate(ids, mask, max_new_tokens=20, ignore_eos=True).shape == (2, 20)


def test_shared_prefix_greedy_samples_are_the_single_answer(sharp_model):
    ids, mask = left_padded([10, 4, 8])
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[])
    single = decoder.generate(ids, mask, max_new_tokens=16)
    shared = decoder.generate(ids, mask, max_new_tokens=16, num_samples=3)
    assert torch.equal(shared, single.repeat_interleave(3, dim=0))


def test_prefill_chunks_give_the_same_tokens(sharp_model):
    ids, mask = left_padded([10, 4, 8, 10, 2])
    whole = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[])
    chunked = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], prefill_tokens=10)  # 1 prompt/forward
    assert torch.equal(chunked.generate(ids, mask, max_new_tokens=12, num_samples=2),
                       whole.generate(ids, mask, max_new_tokens=12, num_samples=2))  # fmt: skip


@pytest.mark.parametrize("budget", [10, 32768])  # 10: about one prompt a forward
def test_packed_prefill_gives_generates_tokens(sharp_model, budget, monkeypatch):
    """Prompts packed back to back without padding (on a CPU through the reference attention, SDPA per prompt) give
    ``generate``'s greedy tokens, and with several samples each the padded prefill's."""
    from guard_eval.generation import fast_decode

    ids, mask = left_padded([12, 7, 3, 12, 1])
    packed = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], packed_prefill=True, prefill_tokens=budget)
    padded = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], packed_prefill=False,
                           prefill_tokens=budget)  # fmt: skip
    assert packed.reasons["packed_prefill"].startswith("prompts packed without padding, SDPA per prompt")
    calls = []
    attention = fast_decode.packed.attention
    monkeypatch.setattr(fast_decode.packed, "attention", lambda *a: calls.append(a[3].tolist()) or attention(*a))
    reference = plain_generate(sharp_model, ids, mask, 20, eos=None)
    assert torch.equal(packed.generate(ids, mask, max_new_tokens=20), reference)
    chunks = [[0, 12, 19, 22, 34, 35]] if budget > 35 else [[0, 12], [0, 7, 10], [0, 12], [0, 1]]  # <= 10 tokens or 1
    assert calls == [bounds for bounds in chunks for _ in range(sharp_model.config.num_hidden_layers)]
    sampled = {"max_new_tokens": 12, "num_samples": 3, "temperature": 1.0, "seed": 5}
    assert torch.equal(packed.generate(ids, mask, **sampled), padded.generate(ids, mask, **sampled))


def test_pack_lays_prompts_back_to_back_and_resolves_by_device():
    from guard_eval.generation.packed_prefill import pack, resolve

    ids = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 4], [0, 0, 0, 3]])
    mask = (ids != 0).long()
    p = pack(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0))
    assert p.ids.tolist() == [[5, 6, 7, 8, 9, 4, 3]] and p.positions.tolist() == [[0, 1, 0, 1, 2, 3, 0]]
    assert p.prompt.tolist() == [0, 0, 1, 1, 1, 1, 2] and p.slots.tolist() == [2, 3, 0, 1, 2, 3, 3]
    assert p.bounds.tolist() == [0, 2, 6, 7] and p.longest == 4 and p.last.tolist() == [1, 5, 6]
    config = SimpleNamespace(hidden_size=64, num_attention_heads=4, head_dim=16)
    assert resolve(config, "cpu", torch.float32, None) == (False, "flash varlen attention needs CUDA (device is cpu)")
    assert resolve(config, "cuda", torch.float32, None)[1].endswith("needs bf16 or fp16 (model is torch.float32)")
    flash = "prompts packed without padding, flash varlen attention"
    assert resolve(config, "cuda", torch.bfloat16, None) == (True, flash)
    assert resolve(config, "cuda", torch.bfloat16, False) == (False, "off (packed_prefill=false)")
    assert resolve(SimpleNamespace(**{**vars(config), "head_dim": 512}), "cuda", torch.bfloat16, True) == (
        True, "prompts packed without padding, SDPA per prompt (head size 512 > 256)")  # fmt: skip


def test_finish_checks_are_read_a_step_later_and_not_asked_when_forced(sharp_model, monkeypatch):
    """The host reads "has every row finished?" one step after asking, so the device always has a step queued; the
    ids still end at the check. Forced lengths never ask."""
    from guard_eval.generation import fast_decode

    ids, mask = left_padded([6, 6])
    first = plain_generate(sharp_model, ids, mask, 1, eos=None)[:, 0].tolist()
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=first, check_every=4)
    steps, log = [], []
    run_step = decoder._run_step
    monkeypatch.setattr(decoder, "_run_step", lambda *a, **kw: steps.append(1) or run_step(*a, **kw))

    class Recording(fast_decode.HostCopy):
        def __init__(self, tensor):  # the flag is a bool, the ids are not
            if tensor.dtype == torch.bool:
                log.append(("asked", len(steps)))
            super().__init__(tensor)

        def result(self):
            if self._host.dtype == torch.bool:
                log.append(("read", len(steps)))
            return super().result()

    monkeypatch.setattr(fast_decode, "HostCopy", Recording)
    out = decoder.generate(ids, mask, max_new_tokens=100)
    assert out.shape[1] == 4 and (out[:, 1:] == PAD).all()  # as if it had stopped at the check
    assert log == [("asked", 3), ("read", 4)] and len(steps) == 4  # one step past the check, then stopped
    log.clear()
    assert decoder.generate(ids, mask, max_new_tokens=30, ignore_eos=True).shape == (2, 30) and log == []


@pytest.mark.parametrize("refill_at", [0.0, 0.5, 1.0])  # refill at every check, once 2 of 3 rows wait, all 3
def test_continuous_batching_gives_generates_tokens(sharp_model, refill_at):
    """Ten prompts through three rows: rows stop at EOS at different steps and take the next prompt, the ring cache
    wraps several times (small bucket), and every prompt gets plain ``generate``'s tokens up to its EOS."""
    ids, mask = left_padded([12, 7, 3, 12, 9, 5, 11, 2, 8, 6], seed=5)
    prompts = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
    eos = int(plain_generate(sharp_model, ids, mask, 20, eos=None)[0, 3])
    expected = []
    for row in plain_generate(sharp_model, ids, mask, 20, eos=eos).tolist():
        expected.append(row[: row.index(eos) + 1] if eos in row else row)
    assert len({len(e) for e in expected}) > 2, "rows should end at several different steps"
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[eos], bucket=4, check_every=3,
                            refill_at=refill_at)  # fmt: skip
    modes, step = [], decoder._run_step  # no autograd graph kept (on a GPU it held every step's activations)
    decoder._run_step = lambda *a, **kw: modes.append(torch.is_inference_mode_enabled()) or step(*a, **kw)
    batches = list(decoder.stream_continuous(prompts, rows=3, max_new_tokens=20))
    assert modes and all(modes)
    assert len(batches) > 2, "finished prompts should be yielded as they end, not all at the end"
    streamed = [pair for batch in batches for pair in batch]
    assert sorted(i for i, _ in streamed) == list(range(10)) and dict(streamed) == dict(enumerate(expected))
    assert decoder.generate_continuous(prompts, rows=3, max_new_tokens=20) == expected
    assert decoder._session.cache.length == 36  # 12 + 20 + 3 + 1 slots: ten answers of up to 20 tokens wrap it
    decoder.generate(ids[:3], mask[:3], max_new_tokens=50)  # leaves a 3-row session with a longer cache and out
    assert decoder.generate_continuous(prompts, rows=3, max_new_tokens=20) == expected  # which the next call reuses
    forced = decoder.generate_continuous(prompts, rows=4, max_new_tokens=7, ignore_eos=True)
    assert forced == decoder.generate(ids, mask, max_new_tokens=7, ignore_eos=True).tolist()
    assert decoder.generate_continuous([], rows=3, max_new_tokens=5) == []


def test_a_new_session_frees_the_old_one_before_allocating(sharp_model, monkeypatch):
    """Another shape of batch replaces the decoder's buffers: the old ones must be gone before the new ones are
    allocated, or two caches of up to half the GPU each (``max_batch_tokens``) run it out of memory."""
    from guard_eval.generation import fast_decode

    ids, mask = left_padded([5, 3, 4, 6])
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[])
    decoder.generate(ids[:2], mask[:2], max_new_tokens=4)
    old, alive, real = weakref.ref(decoder._session), [], fast_decode.StaticKVCache
    monkeypatch.setattr(fast_decode, "StaticKVCache", lambda *a, **kw: alive.append(old() is not None) or real(*a, **kw))
    decoder.generate(ids, mask, max_new_tokens=4)
    assert alive == [False]


def test_sampling_shapes_and_seeding(sharp_model):
    ids, mask = left_padded([10, 4])
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[])
    run = lambda seed: decoder.generate(ids, mask, max_new_tokens=12, num_samples=4, temperature=1.0, seed=seed)
    a, b, c = run(7), run(7), run(8)
    assert a.shape == (8, 12)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert len({tuple(row) for row in a[:4].tolist()}) > 1  # the samples of one prompt differ


def test_choose_tokens_follows_softmax_and_nucleus():
    torch.manual_seed(0)
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0]).log_softmax(-1)
    probs = logits.softmax(-1)
    draws = choose_tokens(logits.expand(40000, 4), temperature=1.0, top_p=1.0)
    freq = torch.bincount(draws, minlength=4) / 40000
    assert torch.allclose(freq, probs, atol=0.01)
    # top_p = 0.8: the nucleus is the first two tokens (0.64 + 0.24), renormalised
    draws = choose_tokens(logits.expand(40000, 4), temperature=1.0, top_p=0.8)
    freq = torch.bincount(draws, minlength=4) / 40000
    assert torch.allclose(freq, torch.tensor([0.7275, 0.2725, 0.0, 0.0]), atol=0.01)
    hot = choose_tokens(logits.expand(40000, 4), temperature=4.0, top_p=1.0)
    assert torch.bincount(hot, minlength=4)[3] > 3000  # a high temperature flattens the distribution
    assert torch.equal(choose_tokens(logits.expand(3, 4), 0.0, 1.0), torch.zeros(3, dtype=torch.long))


def test_unsupported_models_are_named():
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        MistralConfig,
        MistralForCausalLM,
    )

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    assert "gpt2" in unsupported_reason(gpt2)
    with pytest.raises(ValueError, match="gpt2"):
        StaticDecoder(gpt2, pad_token_id=0, eos_token_ids=[])
    windowed = MistralForCausalLM(MistralConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64,
                                                num_attention_heads=2, num_key_value_heads=1, vocab_size=50,
                                                sliding_window=16))  # fmt: skip
    assert unsupported_reason(windowed) == "sliding-window attention"


# -- the backend on the shared tiny model ------------------------------------------------------------------------------

PROMPTS = [
    "Human user:\nHow do I bake bread?\n\nAI assistant:\nKnead, proof, bake.\n\n",
    "hi",
    "Human user:\nTell me how to hurt someone.\n\nAI assistant:\nNo.\n\n" * 2,
    "x y z " * 9,
]


def test_backend_fast_equals_plain_generate(tiny_model):
    fast, plain = HFBackend(str(tiny_model)), HFBackend(str(tiny_model), fast=False)
    assert fast.decoder is not None and plain.decoder is None
    config = GenerationConfig(max_new_tokens=24, batch_size=3)  # two batches, mixed lengths
    assert fast.generate(PROMPTS, config) == plain.generate(PROMPTS, config)
    chats = [[{"role": "user", "content": p}] for p in PROMPTS[:2]]
    assert fast.generate(chats, config) == plain.generate(chats, config)


def test_backend_continuous_batching_keeps_the_outputs(tiny_model):
    """``continuous``: off by default on a CPU (its SDPA attention would read the whole ring), forced on it gives the
    batch-by-batch outputs, in runs of prompts that fit the same rows under ``max_batch_tokens``; k > 1 samples per
    prompt and forced lengths still go batch by batch."""
    static = HFBackend(str(tiny_model))
    assert static.continuous is False
    config = GenerationConfig(max_new_tokens=24, batch_size=3)
    expected = static.generate(PROMPTS, config)
    continuous = HFBackend.from_loaded(static.model, static.tokenizer, continuous=True)
    calls, run = [], continuous.decoder.stream_continuous
    continuous.decoder.stream_continuous = lambda p, **kw: calls.append((len(p), kw["rows"])) or run(p, **kw)
    assert continuous.generate(PROMPTS, config) == expected and calls == [(4, 3)]
    lengths = sorted((len(static.tokenizer(p)["input_ids"]) for p in PROMPTS), reverse=True)
    ring = [-(-(n + 24 + 16 + 1) // 4) * 4 for n in lengths]  # slots a row of each prompt needs (4-slot bucket)
    assert ring[0] > ring[1]
    capped = HFBackend.from_loaded(static.model, static.tokenizer, continuous=True, bucket=4,
                                   max_batch_tokens=2 * ring[1])  # fmt: skip
    runs, run = [], capped.decoder.stream_continuous
    capped.decoder.stream_continuous = lambda p, **kw: runs.append((len(p), kw["rows"])) or run(p, **kw)
    assert capped.generate(PROMPTS, config) == expected
    rows = [min(3, 2 * ring[1] // n) for n in ring]  # the longest prompt gets one row, the next two...
    assert rows[:2] == [1, 2] and runs == [(len(list(same)), r) for r, same in itertools.groupby(rows)]
    sampled = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=2, batch_size=2, seed=3)
    assert continuous.generate(PROMPTS, sampled) == static.generate(PROMPTS, sampled) and calls == [(4, 3)]
    forced = continuous.generate(PROMPTS, config, ignore_eos=True)  # every row runs to the end: batch by batch
    assert forced == static.generate(PROMPTS, config, ignore_eos=True) and calls == [(4, 3)]


def test_max_batch_tokens_splits_long_batches_and_keeps_the_outputs(tiny_model):
    """A batch holds at most ``max_batch_tokens`` cache slots (rows x (prompt + new) x samples), longest prompts
    first; every row still gets the tokens it gets in one batch (no default budget on a CPU)."""
    whole = HFBackend(str(tiny_model))
    assert whole.max_batch_tokens is None
    capped = HFBackend(str(tiny_model), max_batch_tokens=130)
    rows, launch = [], capped.decoder.launch
    capped.decoder.launch = lambda ids, mask, **kw: rows.append(len(ids)) or launch(ids, mask, **kw)
    config = GenerationConfig(max_new_tokens=24, batch_size=4)
    lengths = sorted((len(capped.tokenizer(p)["input_ids"]) for p in PROMPTS), reverse=True)
    assert capped.generate(PROMPTS, config) == whole.generate(PROMPTS, config)
    assert sum(rows) == 4 and len(rows) > 1
    for bad in (0, -5, "many"):
        with pytest.raises(ValueError, match="max_batch_tokens must be a positive number of cache slots"):
            HFBackend.from_loaded(capped.model, capped.tokenizer, max_batch_tokens=bad)
    for name in ("continuous", "fused_layers", "compile"):  # on/off options: a misspelt value is an error, not "on"
        with pytest.raises(ValueError, match=f"backend option {name} must be true or false, got 'flase'"):
            HFBackend.from_loaded(capped.model, capped.tokenizer, **{name: "flase"})
    first = 0
    for n in rows:  # each batch as large as the budget allows for its longest prompt (and at least one row)
        assert n == max(1, min(4 - first, 130 // (lengths[first] + 24)))
        first += n


def test_backend_finishes_a_batch_after_queuing_the_next(tiny_model, monkeypatch):
    """On a GPU a batch's completions are copied off, decoded and yielded after the next batch is launched (the device
    works while the host decodes and the caller writes); a launch that fails still lets the previous batch through.
    On a CPU, where a launch computes its batch, each batch is yielded at once."""
    backend = HFBackend(str(tiny_model))
    config = GenerationConfig(max_new_tokens=6, batch_size=1)
    expected = backend.generate(PROMPTS, config)
    assert backend.queue_ahead is False
    backend.queue_ahead = True  # as on a GPU
    events, launch = [], backend._launch

    def recording(enc, *args, **kwargs):
        if len([e for e in events if e == "launch"]) == fail_at:
            raise RuntimeError("device lost")
        events.append("launch")
        return launch(enc, *args, **kwargs)

    monkeypatch.setattr(backend, "_launch", recording)
    fail_at = None
    got = {}
    for i, texts in backend.stream(PROMPTS, config):
        events.append("yield")
        got[i] = texts
    assert events == ["launch", "launch", "yield", "launch", "yield", "launch", "yield", "yield"]
    assert [got[i] for i in range(len(PROMPTS))] == expected
    events.clear()
    fail_at, got = 2, {}
    with pytest.raises(RuntimeError, match="device lost"):
        for i, texts in backend.stream(PROMPTS, config):
            got[i] = texts
    assert len(got) == 2 and all(got[i] == expected[i] for i in got)  # both launched batches reached the caller
    backend.queue_ahead, fail_at, events = False, None, []
    assert len(list(itertools.islice(backend.stream(PROMPTS, config), 1))) == 1 and events == ["launch"]


def test_backend_samples_per_prompt(tiny_model):
    backend = get_backend("hf", str(tiny_model))
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, num_samples=3, batch_size=2, seed=3)
    out = backend.generate(PROMPTS, config)
    assert [len(samples) for samples in out] == [3, 3, 3, 3]
    assert out == backend.generate(PROMPTS, config)


def test_host_side_steps_equal_the_tokenizers_own(tiny_model, monkeypatch):
    """The backend tokenizes prompts once, in threads, and left-pads them itself, decodes through the Rust decoder in
    one call, and the run counts output tokens in one batched call: the same ids, tensors, texts and counts as the
    tokenizer's own encoding, padding, ``batch_decode`` and per-text encoding."""
    from types import SimpleNamespace

    from guard_eval.generation import hf
    from guard_eval.generation.hf import decode_batch, encode_batch, left_padded
    from guard_eval.modeling import load_tokenizer
    from guard_eval.runner import count_tokens

    tok = load_tokenizer(str(tiny_model))
    texts = [*PROMPTS, ""]
    many = [f"{t} {i}" for i in range(7) for t in texts]
    pools = []

    class Recording(hf.ThreadPoolExecutor):
        def __init__(self, threads):
            pools.append(threads)
            super().__init__(threads)

    monkeypatch.setattr(hf.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(hf, "ThreadPoolExecutor", Recording)
    for special in (True, False):
        own = tok(many, add_special_tokens=special)["input_ids"]
        assert encode_batch(tok, many, special, per_thread=4) == own and pools == [3]  # slices of 10, 10 and 8
        tok(texts, padding=True)  # a backend with padding set goes through the tokenizer itself
        assert tok.backend_tokenizer.padding and encode_batch(tok, many, special, per_thread=4) == own
        assert pools == [3]
        tok.backend_tokenizer.no_padding()
        pools.clear()
    for special in (True, False):
        ref = tok(texts, add_special_tokens=special, padding=True, return_tensors="pt")
        got = left_padded(tok(texts, add_special_tokens=special)["input_ids"], tok.pad_token_id)
        assert torch.equal(got["input_ids"], ref["input_ids"]) and torch.equal(got["attention_mask"], ref["attention_mask"])
    ids = torch.randint(0, len(tok), (6, 40), generator=torch.Generator().manual_seed(0))
    ids[:3, 25:] = tok.pad_token_id  # rows finished early are pad-filled
    ids[4, 10] = tok.eos_token_id
    assert decode_batch(tok, ids.tolist()) == tok.batch_decode(ids, skip_special_tokens=True)
    outputs = decode_batch(tok, ids.tolist())
    assert count_tokens(SimpleNamespace(tokenizer=tok), outputs) == [
        len(tok(t, add_special_tokens=False)["input_ids"]) for t in outputs]  # fmt: skip
    assert count_tokens(SimpleNamespace(), outputs[:2]) == [None, None]  # an API backend has no tokenizer

    def broken(*args, **kwargs):
        raise RuntimeError("cannot count")

    assert count_tokens(SimpleNamespace(tokenizer=broken), ["x"]) == [None]  # never the reason to lose a run
