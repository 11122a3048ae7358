"""Liger's fused kernels in the fast loop, with a fake ``liger_kernel`` that records what it patched: when they are on
(CUDA + installed + supported + not compiled, unless forced off), that they run only while the decoder runs, that the
model and its modeling module are restored afterwards, and that the tokens stay those of ``generate``."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from transformers.models.llama import modeling_llama

from guard_eval.generation import fused_kernels
from guard_eval.generation.fast_decode import StaticDecoder
from guard_eval.generation.hf import HFBackend

PAD, EOS = 0, 2


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=PAD, eos_token_id=EOS)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model


class FakeLiger:
    """``apply_liger_kernel_to_llama`` stand-in: counting wrappers around the original RMSNorm/MLP/rotary code."""

    def __init__(self):
        self.calls: list[dict] = []
        self.runs = {"rms_norm": 0, "swiglu": 0, "rope": 0}

    def apply_llama(self, rope=True, cross_entropy=False, fused_linear_cross_entropy=True, rms_norm=True,
                    swiglu=True, model=None):  # fmt: skip
        self.calls.append({"rope": rope, "cross_entropy": cross_entropy, "rms_norm": rms_norm, "swiglu": swiglu,
                           "fused_linear_cross_entropy": fused_linear_cross_entropy, "model": model})  # fmt: skip
        runs, original_rope = self.runs, modeling_llama.apply_rotary_pos_emb

        def counted(kind, forward):
            def wrapper(self, *args, **kwargs):
                runs[kind] += 1
                return forward(self, *args, **kwargs)

            return wrapper

        def rope_fn(*args, **kwargs):
            runs["rope"] += 1
            return original_rope(*args, **kwargs)

        if rope:
            modeling_llama.apply_rotary_pos_emb = rope_fn
        if rms_norm:
            modeling_llama.LlamaRMSNorm = type("LigerRMSNorm", (), {})
        for module in model.modules():
            name = type(module).__name__
            if rms_norm and name == "LlamaRMSNorm":
                module.forward = types.MethodType(counted("rms_norm", type(module).forward), module)
                module.casting_mode = "llama"  # Liger adds attributes too
            if swiglu and name == "LlamaMLP":
                module.forward = types.MethodType(counted("swiglu", type(module).forward), module)

    def install(self, monkeypatch, table=None):
        patch = types.ModuleType("liger_kernel.transformers.monkey_patch")
        patch.MODEL_TYPE_TO_APPLY_LIGER_FN = {"llama": self.apply_llama} if table is None else table
        for name in ("liger_kernel", "liger_kernel.transformers"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", patch)
        return self


@pytest.fixture
def liger(monkeypatch):
    return FakeLiger().install(monkeypatch)


@pytest.fixture
def no_liger(monkeypatch):
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", None)  # import raises ImportError


def test_auto_is_on_only_for_cuda_with_liger_installed(model, liger):
    assert fused_kernels.resolve(model, "cuda", None) == (True, "liger-kernel: rms_norm, rope, swiglu")
    on, why = fused_kernels.resolve(model, "cpu", None)
    assert not on and "CUDA" in why
    on, why = fused_kernels.resolve(model, "cuda", None, compile=True)
    assert not on and "torch.compile" in why
    assert fused_kernels.resolve(model, "cuda", True, compile=True)[0]  # forced on next to compile
    on, why = fused_kernels.resolve(model, "cuda", False)
    assert not on and "fused_kernels=false" in why
    with pytest.raises(ValueError, match="fused_kernels=true: fused kernels need a CUDA device"):
        fused_kernels.resolve(model, "cpu", True)


def test_not_installed_or_unsupported_is_off_and_says_why(model, no_liger, monkeypatch):
    on, why = fused_kernels.resolve(model, "cuda", None)
    assert not on and "liger-kernel is not installed" in why
    with pytest.raises(ValueError, match="not installed"):
        fused_kernels.resolve(model, "cuda", True)
    FakeLiger().install(monkeypatch, table={"qwen2": None})
    on, why = fused_kernels.resolve(model, "cuda", None)
    assert not on and "no kernels for model type 'llama'" in why


def test_applied_patches_only_inside_the_block(model, liger):
    ids = torch.tensor([[5, 6, 7, 8]])
    rope_before, norm_class_before = modeling_llama.apply_rotary_pos_emb, modeling_llama.LlamaRMSNorm
    attrs_before = [dict(vars(m)) for m in model.modules()]
    with torch.no_grad():
        reference = model(ids).logits
        with fused_kernels.applied(model):
            patched = model(ids).logits
            assert modeling_llama.apply_rotary_pos_emb is not rope_before
        after = model(ids).logits
    (call,) = liger.calls
    assert call["model"] is model and call["rms_norm"] and call["rope"] and call["swiglu"]
    assert not call["cross_entropy"] and not call["fused_linear_cross_entropy"]  # losses stay out of decoding
    # 2 layers x (2 norms, 1 MLP, 1 rotary) + the final norm, once each, and only inside the block
    assert liger.runs == {"rms_norm": 5, "swiglu": 2, "rope": 2}
    assert torch.equal(patched, reference) and torch.equal(after, reference)
    assert modeling_llama.apply_rotary_pos_emb is rope_before and modeling_llama.LlamaRMSNorm is norm_class_before
    assert [dict(vars(m)) for m in model.modules()] == attrs_before


def test_decoder_runs_the_kernels_and_keeps_generate_tokens(model, liger, monkeypatch):
    monkeypatch.setattr(fused_kernels, "resolve", lambda *a, **k: (True, "forced for the test"))
    ids = torch.tensor([[0, 0, 5, 9, 11], [4, 8, 15, 16, 23]])
    mask = (ids != PAD).long()
    model.generation_config.eos_token_id = None
    reference = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                               pad_token_id=PAD)[:, ids.shape[1] :]  # fmt: skip
    decoder = StaticDecoder(model, pad_token_id=PAD, eos_token_ids=[])
    assert decoder.fused_kernels
    out = decoder.generate(ids, mask, max_new_tokens=12)
    assert torch.equal(out, reference)
    assert liger.runs["rope"] == 2 * 12  # prefill + 11 decode steps, 2 layers each: every forward was patched
    assert liger.runs["swiglu"] == 2 * 12 and liger.runs["rms_norm"] == 5 * 12
    runs = dict(liger.runs)
    model(ids)  # outside the decoder: the original modules again
    assert liger.runs == runs


def test_backend_option_turns_them_off_or_fails_clearly(model, liger):
    from guard_eval.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    backend = HFBackend.from_loaded(model, tokenizer, fused_kernels=False)
    assert not backend.decoder.fused_kernels and "fused_kernels=false" in backend.decoder.reasons["fused_kernels"]
    assert not HFBackend.from_loaded(model, tokenizer).decoder.fused_kernels  # auto on CPU: off
    with pytest.raises(ValueError, match="need a CUDA device"):
        HFBackend.from_loaded(model, tokenizer, fused_kernels=True)


# -- training: TRL's use_liger_kernel as a config switch ---------------------------------------------------------------


def test_training_switch_reaches_trl_and_is_checked_first(tmp_path, liger, monkeypatch):
    from trl import SFTConfig

    from guard_train import training
    from guard_train.sft import SftConfig

    cfg = SftConfig(model="tiny", output_dir=str(tmp_path / "out"), use_liger_kernel=True)
    with pytest.raises(ValueError, match="use_liger_kernel: .* need a CUDA GPU"):
        cfg.validate()  # on this CPU machine
    monkeypatch.setattr(training, "_gpu", lambda: True)
    cfg.validate()
    args = training.trainer_args(cfg, max_length=64)
    assert args["use_liger_kernel"] is True
    assert training.trainer_args(SftConfig(model="tiny", output_dir="x"))["use_liger_kernel"] is False
    assert "use_liger_kernel" in {f.name for f in __import__("dataclasses").fields(SFTConfig)}  # TRL's own name
    monkeypatch.setitem(sys.modules, "liger_kernel", None)
    with pytest.raises(ModuleNotFoundError, match="use_liger_kernel: liger-kernel is not installed"):
        cfg.validate()


def test_a_liger_that_fails_to_import_is_named_not_called_missing(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", None)
    monkeypatch.setitem(sys.modules, "transformers.models.some_new_model", None)

    def broken(name):
        if name == "liger_kernel.transformers.monkey_patch":
            import transformers.models.some_new_model  # noqa: F401 -- what a Liger newer than transformers does
        raise AssertionError(name)

    monkeypatch.setattr(fused_kernels.importlib, "import_module", broken)
    with pytest.warns(UserWarning, match="installed but does not import"):
        on, why = fused_kernels.resolve(model, "cuda", None)
    assert not on and "some_new_model" in why
    with pytest.raises(ValueError, match="fused_kernels=true: liger-kernel is installed but does not import"):
        fused_kernels.resolve(model, "cuda", True)
