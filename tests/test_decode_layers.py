"""The fast loop's own decode-step forward (run by Triton's CPU interpreter): the attention kernel given the step's
new token equals HF's rotation, cache update and attention, and the loop decodes ``generate``'s greedy tokens with it
for Qwen2 (q/k/v biases), Qwen3 (per-head q/k norms) and dynamic RoPE (Llama: tests/test_decode_attention.py);
Liger's fused add+RMSNorm is called where HF adds and normalises."""

from __future__ import annotations

import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from guard_eval.generation import decode_layers  # noqa: E402
from guard_eval.generation.fast_decode import StaticDecoder  # noqa: E402
from guard_eval.generation.fused_projections import fuse_storage  # noqa: E402
from tests.test_generation import PAD, VOCAB, left_padded, plain_generate  # noqa: E402

if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
    pytest.skip("the Triton kernels need a GPU or TRITON_INTERPRET=1 (tests/conftest.py sets it)", allow_module_level=True)


def sharp(model_type: str, **options):
    """A 2-layer GQA model of ``model_type`` whose large random weights make the argmax depend on the context."""
    from transformers import AutoConfig, AutoModelForCausalLM

    options = {"max_position_embeddings": 512, **options}
    config = AutoConfig.for_model(model_type, vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                  pad_token_id=PAD, eos_token_id=2, **options)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1 or name.endswith("bias"):
                p.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("splits", [1, 3])
def test_attention_with_the_new_token_rotates_caches_and_attends_like_hf(splits):
    """``decode_attention`` with a ``NewToken``: the query and key rotated as HF's ``apply_rotary_pos_emb``, the key
    and value written into the slot (nothing else), and attention as SDPA's over the marked slots and the new token."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    from guard_eval.generation.decode_attention import NewToken, decode_attention

    rows, heads, kv_heads, dim, length, slot = 3, 8, 2, 16, 300, 260
    g = torch.Generator().manual_seed(splits)
    qkv = torch.randn(rows, (heads + 2 * kv_heads) * dim, generator=g)  # one GEMM's output: strided head views
    q, k, v = (t.view(rows, -1, dim) for t in qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], -1))
    angles = torch.rand(rows, dim // 2, generator=g) * 6
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    keys, values = torch.randn(2, rows, kv_heads, length, dim, generator=g)
    valid = torch.rand(rows, length, generator=g) > 0.3  # on both sides of the slot, as in a ring
    valid[:, slot] = False
    before_k, before_v = keys.clone(), values.clone()
    new = NewToken(k, v, cos, sin, torch.tensor([slot]))
    out = decode_attention(q.unsqueeze(2), keys, values, valid, 0.25, splits=splits, new=new)

    want_q, want_k = apply_rotary_pos_emb(q.unsqueeze(2), k.unsqueeze(2), cos[:, None], sin[:, None])
    torch.testing.assert_close(keys[:, :, slot], want_k.squeeze(2), atol=1e-6, rtol=1e-6)
    assert torch.equal(values[:, :, slot], v)
    others = [t for t in range(length) if t != slot]
    assert torch.equal(keys[:, :, others], before_k[:, :, others])
    assert torch.equal(values[:, :, others], before_v[:, :, others])
    valid[:, slot] = True  # the reference reads the new token from its slot
    want = F.scaled_dot_product_attention(want_q, keys.repeat_interleave(4, 1), values.repeat_interleave(4, 1),
                                          attn_mask=valid[:, None, None, :], scale=0.25)  # fmt: skip
    torch.testing.assert_close(out, want.transpose(1, 2), atol=1e-5, rtol=1e-5)


DYNAMIC = {"rope_parameters": {"rope_type": "dynamic", "factor": 4.0, "rope_theta": 10000.0},
           "max_position_embeddings": 8}  # fmt: skip


# Llama: tests/test_decode_attention.py; dynamic RoPE (past its 8 positions): cos/sin from the module each step
@pytest.mark.parametrize("model_type,options", [("qwen2", {}), ("qwen3", {}), ("llama", DYNAMIC)])
def test_fast_loop_with_own_layers_decodes_generates_tokens(model_type, options):
    ids, mask = left_padded([12, 7, 3, 12, 1])
    reference = plain_generate(sharp(model_type, **options), ids, mask, 8, eos=None)
    model = sharp(model_type, **options)  # the same weights; a dynamic RoPE module remembers the longest it saw
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], bucket=8, decode_attention="triton")
    assert decoder.fused_layers, decoder.reasons["fused_layers"]
    assert torch.equal(decoder.generate(ids, mask, max_new_tokens=8), reference)
    assert decoder._decode_logits.rope_by_step == bool(options)


def test_liger_add_norm_runs_where_hf_adds_and_normalises(monkeypatch):
    """With the fused kernels on, every residual add but the first goes through Liger's add+RMSNorm (a fake here that
    counts calls), and the logits are HF's."""
    calls = []

    class FakeAddNorm:
        @staticmethod
        def apply(x, residual, weight, eps, offset, casting_mode, in_place):
            calls.append((eps, offset, casting_mode, in_place))
            summed = x + residual
            normed = summed * torch.rsqrt(summed.pow(2).mean(-1, keepdim=True) + eps)
            return weight * normed, summed

    module = types.ModuleType("liger_kernel.ops.fused_add_rms_norm")
    module.LigerFusedAddRMSNormFunction = FakeAddNorm
    for name in ("liger_kernel", "liger_kernel.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    model = sharp("llama")
    fuse_storage(model)
    ids, mask = left_padded([6, 4])
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], decode_attention="triton")
    forward = decode_layers.DecodeLayers(model, fused_add_norm=True)
    with torch.inference_mode(), decoder.decoding():  # prefill 6 tokens, then one step of ours and one of HF's
        decoder.generate(ids, mask, max_new_tokens=1)
        s = decoder._session
        s.cache.position.fill_(ids.shape[1])
        s.positions.copy_(mask.sum(1, keepdim=True))
        attend = s.valid[:, : ids.shape[1] + 1]  # the prompts' slots; ours attends to the new token from registers
        ours = forward(s.tokens, s.positions, attend, s.cache)
        s.valid[:, ids.shape[1]] = True  # HF's attention reads it from its slot
        theirs = decoder._hf_step(s.tokens, s.positions, attend, s.cache)
    assert len(calls) == 2 * 2 and {c[1:] for c in calls} == {(0.0, "llama", False)}  # 2 layers: 2 adds each
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_resolve_names_why_it_is_off_and_forcing_it_fails_clearly():
    model = sharp("llama")
    assert "not plain nn.Linear layers with one fused weight" in decode_layers.resolve(model, None, "triton", True)[1]
    fuse_storage(model)  # as every decoder does first
    assert decode_layers.resolve(model, None, "triton", fused_kernels=True)[0]
    assert "no Liger" in decode_layers.resolve(model, None, "triton", fused_kernels=False)[1]
    assert decode_layers.resolve(model, False, "triton", True) == (False, "off (fused_layers=false)")
    assert decode_layers.resolve(model, None, "sdpa", True) == (
        False, "needs the Triton decode attention (decode attention is sdpa)")  # fmt: skip
    model.model.layers[1].self_attn.k_proj = torch.nn.Sequential(model.model.layers[1].self_attn.k_proj)  # a wrapper
    with pytest.raises(ValueError, match="fused_layers=true: the q/k/v projections are not plain nn.Linear"):
        StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], decode_attention="triton", fused_layers=True)
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], decode_attention="triton")
    assert not decoder.fused_layers and "nn.Linear" in decoder.reasons["fused_layers"]
