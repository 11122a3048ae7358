"""Fused q/k/v and gate/up projections: one storage per group with unchanged values (training and save_pretrained still
work), one GEMM per group only while the decoder runs (counted through ``F.linear`` and ``torch.matmul``),
``generate``'s greedy tokens for Llama and a Qwen2 with q/k/v biases, the option's auto/off/forced resolution, and
nesting inside Liger's patch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from guard_eval.generation import fused_projections
from guard_eval.generation.fast_decode import StaticDecoder
from guard_eval.generation.hf import HFBackend

PAD = 0
IDS = torch.tensor([[0, 0, 5, 9, 11], [4, 8, 15, 16, 23]])


def build(kind: str):
    """A 2-layer GQA model with large random weights (biases too); intermediate 96 so no unfused width is fused's."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    config = config_cls(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, pad_token_id=PAD, eos_token_id=2)  # fmt: skip
    torch.manual_seed(0)
    model = model_cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


@pytest.fixture(params=["llama", "qwen2"])
def model(request):
    return build(request.param)


@pytest.fixture
def linear_calls(monkeypatch):
    """The output width of every GEMM: ``F.linear`` (nn.Linear, the fused q/k/v) and ``torch.matmul`` (the fused
    gate/up, whose ``(n, hidden, size)`` weight gives ``n * size``)."""
    widths, linear, matmul = [], F.linear, torch.matmul

    def counted(x, weight, bias=None):
        widths.append(weight.shape[0])
        return linear(x, weight, bias)

    def counted_matmul(x, w):
        widths.append(w.shape[0] * w.shape[-1])
        return matmul(x, w)

    monkeypatch.setattr(F, "linear", counted)
    monkeypatch.setattr(torch, "matmul", counted_matmul)
    return widths


def groups(model):
    return [[getattr(getattr(layer, block), name) for name in names]
            for layer in model.model.layers for block, names in fused_projections.GROUPS]  # fmt: skip


def test_fuse_storage_shares_one_storage_per_group_with_the_same_values(model):
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.inference_mode():  # a decoder built under inference mode must still leave trainable parameters
        assert fused_projections.fuse_storage(model) == 4
    pointers = {name: p.data_ptr() for name, p in model.named_parameters()}
    assert fused_projections.fuse_storage(model) == 4  # idempotent: nothing moves
    assert pointers == {name: p.data_ptr() for name, p in model.named_parameters()}
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    for projs in groups(model):
        for attr in ("weight", "bias"):
            tensors = [getattr(p, attr) for p in projs]
            if tensors[0] is None:
                continue
            assert len({t.untyped_storage().data_ptr() for t in tensors}) == 1
            assert [t.data_ptr() for t in tensors[1:]] == [t.data_ptr() + t.nbytes for t in tensors[:-1]]
            assert not any(t.is_inference() for t in tensors)
    has_bias = groups(model)[0][0].bias is not None
    assert has_bias == (model.config.model_type == "qwen2")
    # training still works: gradients per projection, an optimizer step writes through the views
    model(IDS).logits.sum().backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    q, k, v = groups(model)[0]
    assert torch.equal(fused_projections._joined([q.weight, k.weight, v.weight])[: len(q.weight)], q.weight)
    assert not torch.equal(q.weight, before["model.layers.0.self_attn.q_proj.weight"])


def test_applied_runs_one_gemm_per_group_inside_the_block_only(model, linear_calls, monkeypatch):
    with torch.no_grad():
        reference = model(IDS).logits
        assert len(linear_calls) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer + lm_head
        fused_projections.fuse_storage(model)
        linear_calls.clear()
        with fused_projections.applied(model):
            patched = model(IDS).logits
            assert sorted(linear_calls) == [64, 64, 64, 64, 97, 128, 128, 192, 192]  # q+k+v, o, gate+up, down
            linear_calls.clear()
            attn = model.model.layers[0].self_attn
            x, y = torch.randn(2, 3, 64), torch.randn(2, 3, 64)
            q, k = attn.q_proj(x), attn.k_proj(x)
            assert q._base is k._base and q._base.shape[-1] == 128  # k is the slice of q's GEMM, not its own
            other = attn.v_proj(y)  # another input than q's: computed alone, and right
            assert linear_calls == [128, 32]
            torch.testing.assert_close(other, F.linear(y, attn.v_proj.weight, attn.v_proj.bias))
            linear_calls.clear()
            monkeypatch.setattr(fused_projections, "SEPARATE_QKV_FROM", 5)  # x has 6 tokens: a "prefill"
            q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
            assert linear_calls == [64, 32, 32] and q.is_contiguous() and k.is_contiguous()  # each its own GEMM
            for proj, out in ((attn.q_proj, q), (attn.k_proj, k), (attn.v_proj, v)):
                torch.testing.assert_close(out, F.linear(x, proj.weight, proj.bias))
        linear_calls.clear()
        after = model(IDS).logits
    assert len(linear_calls) == 15
    torch.testing.assert_close(patched, reference, rtol=1e-6, atol=1e-6)
    assert torch.equal(after, reference)
    assert not any("forward" in vars(p) for projs in groups(model) for p in projs)


@pytest.mark.parametrize("attention", ["sdpa", "triton"])  # Triton: the strided q/k/v slices reach the kernel
def test_decoder_gives_generate_tokens_with_the_fused_gemms(model, attention, linear_calls):
    if attention == "triton":
        pytest.importorskip("triton")
    mask = (IDS != PAD).long()
    model.generation_config.eos_token_id = None
    reference = model.generate(input_ids=IDS, attention_mask=mask, max_new_tokens=8, do_sample=False,
                               pad_token_id=PAD)[:, IDS.shape[1] :]  # fmt: skip
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], fused_projections=True,
                            decode_attention=attention)  # fmt: skip
    assert decoder.fused_projections and "4 groups" in decoder.reasons["fused_projections"]
    linear_calls.clear()
    assert torch.equal(decoder.generate(IDS, mask, max_new_tokens=8), reference)
    assert len(linear_calls) == 8 * 9 and 32 not in linear_calls  # prefill + 7 steps, all fused
    linear_calls.clear()
    assert torch.equal(decoder.generate(IDS, mask, max_new_tokens=3), reference[:, :3])  # a second call, same
    model(IDS)
    assert len(linear_calls) == 3 * 9 + 15  # outside the decoder, the modules' own forwards


def test_decoder_nests_inside_liger_and_both_are_removed(monkeypatch, linear_calls):
    from tests.test_fused_kernels import FakeLiger

    model = build("llama")
    liger = FakeLiger().install(monkeypatch)
    monkeypatch.setattr("guard_eval.generation.fused_kernels.resolve", lambda *a, **k: (True, "forced for the test"))
    mask = (IDS != PAD).long()
    model.generation_config.eos_token_id = None
    reference = model.generate(input_ids=IDS, attention_mask=mask, max_new_tokens=6, do_sample=False,
                               pad_token_id=PAD)[:, IDS.shape[1] :]  # fmt: skip
    attrs_before = [dict(vars(m)) for m in model.modules()]
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[], fused_projections=True)
    linear_calls.clear()
    assert torch.equal(decoder.generate(IDS, mask, max_new_tokens=6), reference)
    assert liger.runs["swiglu"] == 2 * 6 and len(linear_calls) == 6 * 9  # Liger's MLP called the fused gate/up
    assert [dict(vars(m)) for m in model.modules()] == attrs_before


def test_save_pretrained_after_fusing_reloads_the_same_weights(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert fused_projections.fuse_storage(model) == 4
    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    expected = model.state_dict()
    assert expected.keys() == reloaded.state_dict().keys()
    assert all(torch.equal(t, expected[name]) for name, t in reloaded.state_dict().items())


def test_option_auto_off_and_forced(tiny_model):
    from peft import LoraConfig, get_peft_model

    from guard_eval.tiny import build_tokenizer

    model = build("llama")
    on, why = fused_projections.resolve(model, "cuda", None)
    assert on and "4 groups" in why
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[])
    assert not decoder.fused_projections and "CUDA only" in decoder.reasons["fused_projections"]
    off = HFBackend.from_loaded(model, build_tokenizer(), fused_projections=False).decoder
    assert not off.fused_projections and "fused_projections=false" in off.reasons["fused_projections"]
    assert HFBackend(str(tiny_model), device="cpu", fused_projections=True).decoder.fused_projections  # the option
    # LoRA on the attention projections: those groups stay as they are, the MLPs still fuse
    partial = get_peft_model(build("llama"), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    on, why = fused_projections.resolve(partial, "cuda", None)
    assert on and why.endswith("(2 groups)")
    everything = get_peft_model(build("llama"), LoraConfig(r=2, target_modules=["q_proj", "v_proj", "up_proj"]))
    on, why = fused_projections.resolve(everything, "cuda", None)
    assert not on and "no decoder layer has plain nn.Linear" in why
    with pytest.raises(ValueError, match="fused_projections=true: no decoder layer has plain nn.Linear"):
        StaticDecoder(everything, pad_token_id=PAD, eos_token_ids=[], fused_projections=True)
