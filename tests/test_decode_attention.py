"""The Triton kernels (run by Triton's CPU interpreter): the decode attention gives SDPA's for any mask, GQA group and
split count, the argmax and the packed cache write give torch's, and the fast loop with them decodes ``generate``'s
greedy tokens."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from guard_eval.generation import decode_attention as attention  # noqa: E402
from guard_eval.generation.fast_decode import StaticDecoder  # noqa: E402
from tests.test_generation import PAD, left_padded, plain_generate, sharp_model  # noqa: E402,F401


if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
    pytest.skip("the Triton kernels need a GPU or TRITON_INTERPRET=1 (tests/conftest.py sets it)", allow_module_level=True)


def sdpa_reference(q, k, v, attend, scale):
    groups = q.shape[1] // k.shape[1]
    kv_len = attend.shape[1]
    k = k[:, :, :kv_len].repeat_interleave(groups, 1)
    v = v[:, :, :kv_len].repeat_interleave(groups, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attend[:, None, None, :], scale=scale).transpose(1, 2)


@pytest.mark.parametrize(
    "rows,heads,kv_heads,dim,kv_len,splits",
    [(3, 4, 1, 64, 128, None), (5, 9, 3, 64, 256, 1), (4, 8, 2, 32, 200, 3), (2, 8, 8, 16, 64, None)],
)
def test_equals_sdpa_over_padding_and_the_bucket_tail(rows, heads, kv_heads, dim, kv_len, splits):
    g = torch.Generator().manual_seed(rows)
    q = torch.randn(rows, heads, 1, dim, generator=g)
    k, v = (torch.randn(rows, kv_heads, kv_len + 40, dim, generator=g) for _ in range(2))  # slots past kv_len exist
    slots = torch.arange(kv_len)
    padding = torch.randint(0, 70, (rows,), generator=g)
    attend = (slots >= padding[:, None]) & (slots <= kv_len - 20)  # left padding, then the bucket's unwritten tail
    for skip_empty in (False, True):  # with and without the test for a block with no attended slot
        out = attention.decode_attention(q, k, v, attend, dim**-0.5, splits=splits, skip_empty=skip_empty)
        assert out.shape == (rows, 1, heads, dim)
        torch.testing.assert_close(out, sdpa_reference(q, k, v, attend, dim**-0.5), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("skip_empty", [False, True])
def test_unattended_slots_are_not_read(skip_empty):
    """NaNs in every slot a row does not attend to (padding, the tail, whole blocks of them) leave the output finite
    and unchanged."""
    q = torch.randn(2, 4, 1, 32)
    k, v = torch.randn(2, 2, 256, 32), torch.randn(2, 2, 256, 32)
    attend = torch.zeros(2, 256, dtype=torch.bool)
    attend[0, 70:150] = attend[1, 130:200] = True
    clean = attention.decode_attention(q, k, v, attend, 0.2, skip_empty=skip_empty)
    k[~attend.unsqueeze(1).expand_as(k[..., 0])] = float("nan")
    v[~attend.unsqueeze(1).expand_as(v[..., 0])] = float("nan")
    torch.testing.assert_close(attention.decode_attention(q, k, v, attend, 0.2, skip_empty=skip_empty), clean)


# 4: many attended-length buckets, through HF's layer forward; 64: one split, one bucket, through the loop's own
# layer forward, with the prompts packed (the packed cache write in Triton too)
@pytest.mark.parametrize("bucket,fused_layers,packed", [(4, False, False), (64, None, True)])
def test_fast_loop_with_the_kernel_decodes_generates_tokens(sharp_model, bucket, fused_layers, packed,  # noqa: F811
                                                           monkeypatch):  # fmt: skip
    from guard_eval.generation import fast_decode

    stores, store = [], fast_decode.packed.store
    monkeypatch.setattr(fast_decode.packed, "store", lambda *a: stores.append(a[-1]) or store(*a))
    ids, mask = left_padded([12, 7, 3, 12, 1])
    reference = plain_generate(sharp_model, ids, mask, 12, eos=None)
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], bucket=bucket, decode_attention="triton",
                            fused_layers=fused_layers, packed_prefill=packed)  # fmt: skip
    assert decoder.decode_attention == "triton" and decoder.fused_layers == (fused_layers is None)
    assert torch.equal(decoder.generate(ids, mask, max_new_tokens=12), reference)
    assert stores == ([1] * sharp_model.config.num_hidden_layers if packed else [])
    if packed:  # two samples a prompt: each prompt's cache written into two rows
        sampled = {"max_new_tokens": 6, "num_samples": 2, "temperature": 1.0, "seed": 3}
        unpacked = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[], bucket=bucket,
                                 decode_attention="triton", packed_prefill=False)  # fmt: skip
        assert torch.equal(decoder.generate(ids, mask, **sampled), unpacked.generate(ids, mask, **sampled))


def test_argmax_and_packed_store_kernels_match_torch():
    """The Triton argmax gives ``torch.argmax`` (the first index on ties, within a block and across blocks, an all
    -inf row, a vocabulary that is not a multiple of the block), and the packed cache write ``index_put_``'s."""
    from guard_eval.generation.fast_decode import argmax
    from guard_eval.generation.packed_prefill import store

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 9000, generator=g).to(torch.bfloat16)
    x[1, 100] = x[1, 8000] = 50
    x[2, 4096] = x[2, 4097] = 60
    x[3] = float("-inf")
    assert argmax(x).tolist() == x.argmax(-1).tolist() == [int(x[0].argmax()), 100, 4096, 0, int(x[4].argmax())]
    y = torch.randn(3, 97, generator=g)
    assert torch.equal(argmax(y), y.argmax(-1))
    keys, values = torch.randn(1, 3, 7, 48, generator=g), torch.randn(1, 3, 7, 48, generator=g)  # 3 heads of 48
    caches = [torch.zeros(6, 3, 10, 48) for _ in range(4)]
    rows, slots = torch.tensor([0, 0, 2, 2, 2, 4, 4]), torch.tensor([8, 9, 7, 8, 9, 8, 9])
    store(keys, values, caches[0], caches[1], rows, slots, 2)
    for copy in range(2):
        caches[2].transpose(1, 2).index_put_((rows + copy, slots), keys[0].transpose(0, 1))
        caches[3].transpose(1, 2).index_put_((rows + copy, slots), values[0].transpose(0, 1))
    assert torch.equal(caches[0], caches[2]) and torch.equal(caches[1], caches[3]) and caches[0].abs().sum() > 0


def test_continuous_batching_through_the_kernel_skips_its_rings_empty_blocks(sharp_model, monkeypatch):  # noqa: F811
    """The ring of a continuous batch is mostly other rows' slots: its steps ask the kernel to skip blocks with no
    attended slot, a left-padded batch's steps do not, and both decode ``generate``'s tokens (rows ending at an EOS
    at different steps: the Triton step bookkeeping finishes them; a second EOS id, outside the vocabulary, too)."""
    ids, mask = left_padded([12, 7, 3, 12, 9, 5])
    prompts = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
    eos = int(plain_generate(sharp_model, ids, mask, 10, eos=None)[0, 3])
    expected = plain_generate(sharp_model, ids, mask, 10, eos=eos)
    ended = [row[: row.index(eos) + 1] if eos in row else row for row in expected.tolist()]
    assert len({len(row) for row in ended}) > 1, "rows should end at different steps"
    calls, real = [], attention.decode_attention
    monkeypatch.setattr(attention, "decode_attention", lambda *a, **kw: calls.append(kw["skip_empty"]) or real(*a, **kw))
    decoder = StaticDecoder(sharp_model, pad_token_id=PAD, eos_token_ids=[eos, 1000], bucket=4, check_every=3,
                            decode_attention="triton")  # fmt: skip
    assert decoder.generate_continuous(prompts, rows=2, max_new_tokens=10) == ended
    assert calls and all(calls)
    calls.clear()
    out = decoder.generate(ids, mask, max_new_tokens=10)
    assert torch.equal(out, expected[:, : out.shape[1]])
    assert calls and not any(calls)


def test_resolve_names_the_choice(monkeypatch, sharp_model):  # noqa: F811
    config = sharp_model.config
    assert attention.resolve(config, "cuda", None) == ("triton", "triton: reads only attended cache blocks")
    assert attention.resolve(config, "cuda", None, compile=True)[0] == "sdpa"
    assert attention.resolve(config, "cuda", "triton", compile=True)[0] == "triton"
    assert attention.resolve(config, "cpu", "sdpa")[0] == "sdpa"
    assert attention.resolve(config, "cpu", None) == ("sdpa", "sdpa (auto picks Triton on CUDA only)")
    assert attention.resolve(config, "cpu", "triton")[0] == "triton"  # under the interpreter
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="decode_attention=triton: the Triton kernel needs a CUDA device"):
        attention.resolve(config, "cpu", "triton")
    with pytest.raises(ValueError, match="must be 'triton' or 'sdpa', got 'flash'"):
        attention.resolve(config, "cuda", "flash")
    odd = type(config)(**{**config.to_dict(), "hidden_size": 96, "num_attention_heads": 4, "head_dim": 24})
    assert attention.resolve(odd, "cuda", None) == ("sdpa", "sdpa (head_dim 24 is not a power of two in [16, 256])")
