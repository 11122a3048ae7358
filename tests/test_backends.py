"""The vllm and inspect generation backends, registered through ``guard_register_backends``.

vLLM cannot be installed here (it pins its own torch), so the vllm backend runs against a fake ``vllm`` module that
records what the backend asks for; Inspect runs offline on ``mockllm/model``.
"""

from __future__ import annotations

import asyncio
import importlib.machinery
import json
import sys
import types
from types import SimpleNamespace
from typing import ClassVar

import pytest

from guard_eval.cli import main
from guard_eval.generation import GenerationConfig, available_backends, get_backend
from guard_eval.generation.fast_decode import HostCopy
from guard_eval.generation.hf import HFBackend, render_prompt
from guard_eval.modeling import load_tokenizer
from guard_eval.results.rundir import read_records

ANSWER = "Answers:\nRequest: harmful\nCompletion: refusal\nResponse: unharmful"
RAW = ["hi", "Human user:\nHow do I bake bread?\n\nAI assistant:\nKnead, proof, bake.\n\n", "x y z " * 9]
CHATS = [
    [{"role": "user", "content": "Human user:\nTell me how to hurt someone.\n\nAI assistant:\nNo.\n\n"}],
    [{"role": "system", "content": "You are a classifier."}, {"role": "user", "content": "hi"}],
    [{"role": "user", "content": "x " * 30}],
]


def test_builtin_backends_are_registered_through_guard_register_backends():
    specs = available_backends()
    assert {"hf", "vllm", "inspect"} <= set(specs)
    assert specs["hf"].priority > specs["vllm"].priority > specs["inspect"].priority


# -- vllm against a fake vllm module -----------------------------------------------------------------------------------


class FakeLLM:
    """Records its kwargs and every generate call; completion j of a prompt names the prompt's last ids and j."""

    instances: ClassVar[list[FakeLLM]] = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, prompts, sampling_params, use_tqdm=True, lora_request=None):
        self.calls.append({"prompts": prompts, "params": sampling_params, "lora_request": lora_request})
        outputs = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            ids = prompt["prompt_token_ids"]
            choices = [SimpleNamespace(index=j, text=f"{ids[-2:]}#{j} seed={params.seed}\n{ANSWER}")
                       for j in range(params.n)]  # fmt: skip
            outputs.append(SimpleNamespace(prompt_token_ids=ids, outputs=choices[::-1]))  # any order: index says
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    vllm.LLM = FakeLLM
    vllm.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, int_id, path: SimpleNamespace(lora_name=name, lora_int_id=int_id, lora_path=path)
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.instances = []
    return FakeLLM


@pytest.fixture
def no_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # find_spec and import both fail, installed or not


def hf_input_ids(tiny_model, prompts, monkeypatch) -> list[list[int]]:
    """The token ids the hf backend feeds its model for each prompt (one call per prompt: no padding to strip)."""
    import torch

    backend = HFBackend(str(tiny_model))
    seen = []

    def capture(enc, config, seed, ignore_eos):
        seen.extend(enc["input_ids"].tolist())
        return HostCopy(torch.zeros((len(enc["input_ids"]) * config.num_samples, 1), dtype=torch.long))

    monkeypatch.setattr(backend, "_launch", capture)
    for prompt in prompts:
        backend.generate([prompt], GenerationConfig())
    return seen


def test_vllm_engine_settings(fake_vllm, tiny_model):
    backend = get_backend("vllm", str(tiny_model), tensor_parallel_size=2, max_model_len=4096, device="cuda:1",
                          gpu_memory_utilization=0.5, swap_space=8)  # fmt: skip
    kwargs = fake_vllm.instances[-1].kwargs
    assert kwargs["enable_prefix_caching"] is True
    assert kwargs["model"] == kwargs["tokenizer"] == str(tiny_model)
    assert (kwargs["tensor_parallel_size"], kwargs["max_model_len"], kwargs["gpu_memory_utilization"]) == (2, 4096, 0.5)
    assert kwargs["dtype"] == "auto" and kwargs["swap_space"] == 8 and "device" not in kwargs
    assert "enable_lora" not in kwargs and backend.lora_request is None
    get_backend("vllm", str(tiny_model), dtype="bfloat16")
    assert fake_vllm.instances[-1].kwargs["dtype"] == "bfloat16"


@pytest.mark.parametrize("prompts", [RAW, CHATS], ids=["raw", "chat"])
def test_vllm_gets_the_hf_backend_tokens_and_keeps_prompt_order(fake_vllm, tiny_model, prompts, monkeypatch):
    backend = get_backend("vllm", str(tiny_model))
    out = backend.generate(prompts, GenerationConfig(max_new_tokens=7))
    sent = [p["prompt_token_ids"] for p in fake_vllm.instances[-1].calls[-1]["prompts"]]
    assert sent == hf_input_ids(tiny_model, prompts, monkeypatch)
    tokenizer = load_tokenizer(str(tiny_model))
    for prompt, ids in zip(prompts, sent):
        if isinstance(prompt, list):
            assert ids.count(tokenizer.bos_token_id) == 1  # the template's BOS, not a second one
            assert tokenizer.decode(ids) == render_prompt(tokenizer, prompt)
    assert [o[0].split("#")[0] for o in out] == [str(ids[-2:]) for ids in sent]  # prompt order


def test_vllm_sampling_params_and_samples_per_prompt(fake_vllm, tiny_model):
    backend = get_backend("vllm", str(tiny_model))
    config = GenerationConfig(max_new_tokens=9, temperature=0.8, top_p=0.9, num_samples=3, seed=5)
    out = backend.generate(RAW, config)
    params = fake_vllm.instances[-1].calls[-1]["params"]
    assert [(p.n, p.temperature, p.top_p, p.max_tokens, p.seed) for p in params] == [
        (3, 0.8, 0.9, 9, 5 + i) for i in range(len(RAW))
    ]
    assert all(p.skip_special_tokens and not p.ignore_eos for p in params)
    assert [[c.split("#")[1].split("\n")[0] for c in samples] for samples in out] == [
        [f"{j} seed={5 + i}" for j in range(3)] for i in range(len(RAW))
    ]  # choices in index order, under their prompt

    greedy = backend.generate(RAW, GenerationConfig(num_samples=2))  # one greedy answer, repeated
    params = fake_vllm.instances[-1].calls[-1]["params"]
    assert {(p.n, p.temperature, p.seed) for p in params} == {(1, 0.0, None)}
    assert all(len(s) == 2 and s[0] == s[1] for s in greedy)
    assert backend.generate([], config) == []


def test_vllm_runs_a_lora_adapter_on_its_base_model(fake_vllm, tiny_model, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = {"base_model_name_or_path": str(tiny_model), "peft_type": "LORA", "r": 24, "rank_pattern": {}}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    backend = get_backend("vllm", str(adapter))
    kwargs = fake_vllm.instances[-1].kwargs
    assert kwargs["model"] == kwargs["tokenizer"] == str(tiny_model)
    assert kwargs["enable_lora"] is True and kwargs["max_lora_rank"] == 32 and kwargs["max_loras"] == 1
    backend.generate(RAW[:1], GenerationConfig())
    request = fake_vllm.instances[-1].calls[-1]["lora_request"]
    assert (request.lora_path, request.lora_int_id) == (str(adapter.resolve()), 1)
    (adapter / "tokenizer_config.json").write_text("{}")  # an adapter saved with its own tokenizer uses that one
    from guard_eval.modeling import tokenizer_source

    assert tokenizer_source(str(adapter)) == str(adapter)


def test_auto_picks_hf_even_with_vllm_installed(fake_vllm, tiny_model):
    assert get_backend("auto", str(tiny_model), device="cpu", dtype=None).name == "hf"
    assert get_backend("vllm", str(tiny_model), device="cpu", dtype=None).name == "vllm"


def test_auto_picks_hf_without_vllm(no_vllm, tiny_model):
    assert get_backend("auto", str(tiny_model), device="cpu").name == "hf"
    with pytest.raises(RuntimeError, match="'vllm' is not available"):
        get_backend("vllm", str(tiny_model))


def test_cli_run_through_the_vllm_backend(fake_vllm, tiny_model, tmp_path):
    out = tmp_path / "run"
    argv = ["run", "--model", str(tiny_model), "--benchmarks", "demo_prompt", "--limit", "3", "--output", str(out),
            "--no-progress", "--backend", "vllm", "--backend-option", "tensor_parallel_size=2"]  # fmt: skip
    assert main(argv) == 0
    assert fake_vllm.instances[-1].kwargs["tensor_parallel_size"] == 2
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["backend"] == "vllm" and results["benchmarks"]["demo_prompt"]["parse_failures"] == 0


# -- inspect on mockllm ------------------------------------------------------------------------------------------------


def mock_output(text: str, choices: int = 1):
    """A mockllm answer with its usage set (otherwise mockllm counts tokens with tiktoken, which downloads a file)."""
    from inspect_ai.model import ModelOutput, ModelUsage

    output = ModelOutput.from_content("mockllm", text)
    output.choices = [output.choices[0].model_copy(deep=True) for _ in range(choices)]
    for j, choice in enumerate(output.choices):
        choice.message.content = f"{text} choice={j}"
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return output


def echo(calls, choices: bool = False):
    """A mockllm model that echoes the roles and last message it got and the settings it was asked for."""

    def model(input, tools, tool_choice, config):
        calls.append(config)
        roles = ",".join(m.role for m in input)
        text = f"{roles}|{input[-1].text}|T={config.temperature} seed={config.seed} n={config.num_choices}"
        return mock_output(text, (config.num_choices or 1) if choices else 1)

    return model


def inspect_backend(outputs, **options):
    return get_backend("inspect", "mockllm/model", custom_outputs=outputs, memoize=False, **options)


def test_inspect_chat_messages_and_prompt_order():
    calls = []
    out = inspect_backend(echo(calls)).generate(["plain text", *CHATS[1:]], GenerationConfig(max_new_tokens=5))
    assert [o[0].split("|")[:2] for o in out] == [["user", "plain text"], ["system,user", "hi"], ["user", "x " * 30]]
    assert {(c.max_tokens, c.temperature, c.top_p, c.num_choices) for c in calls} == {(5, 0.0, None, None)}


def test_inspect_samples_top_up_a_provider_without_num_choices():
    calls = []
    config = GenerationConfig(temperature=0.7, top_p=0.95, num_samples=3, seed=4)
    (samples,) = inspect_backend(echo(calls)).generate(["q"], config)
    assert [(c.num_choices, c.seed, c.top_p) for c in calls] == [(3, 4, 0.95), (2, 5, 0.95), (None, 6, 0.95)]
    assert [s.split(" choice=")[0].split("seed=")[1] for s in samples] == ["4 n=3", "5 n=2", "6 n=None"]


def test_inspect_samples_use_num_choices_where_supported():
    calls = []
    backend = inspect_backend(echo(calls, choices=True))
    (samples,) = backend.generate(["q"], GenerationConfig(temperature=1, num_samples=3))
    assert len(calls) == 1 and [s[-8:] for s in samples] == ["choice=0", "choice=1", "choice=2"]


def test_inspect_greedy_samples_ask_once():
    calls = []
    out = inspect_backend(echo(calls)).generate(["a", "b"], GenerationConfig(num_samples=2))
    assert len(calls) == 2 and all(s[0] == s[1] for s in out)


def test_inspect_max_connections_limits_requests_in_flight():
    state = {"now": 0, "most": 0}

    async def slow(input, tools, tool_choice, config):
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return mock_output(input[-1].text)

    out = inspect_backend(slow, max_connections=2).generate([str(i) for i in range(6)], GenerationConfig())
    assert [o[0].split(" ")[0] for o in out] == [str(i) for i in range(6)] and state["most"] == 2
    state["most"] = 0
    inspect_backend(slow).generate([str(i) for i in range(6)], GenerationConfig())
    assert state["most"] == 6


def test_inspect_errors_raise_or_become_the_completion():
    def broken(input, tools, tool_choice, config):
        raise ConnectionError("no route")

    backend = inspect_backend(broken)
    with pytest.raises(ConnectionError):
        backend.generate(["q"], GenerationConfig())
    out = asyncio.run(backend.agenerate(["q"], GenerationConfig(num_samples=2), on_error=lambda e: f"<{e}>"))
    assert out == [["<no route>", "<no route>"]]
    with pytest.raises(ValueError, match="role must be one of"):
        backend.generate([[{"role": "tool", "content": "x"}]], GenerationConfig())


def test_cli_run_through_the_inspect_backend(tmp_path, monkeypatch):
    from inspect_ai.model._providers.mockllm import MockLLM

    async def count_tokens(self, input):  # mockllm's own count uses tiktoken, which downloads a file
        return 1

    monkeypatch.setattr(MockLLM, "default_output", "The request is harmful.\n" + ANSWER)
    monkeypatch.setattr(MockLLM, "count_tokens", count_tokens)
    out = tmp_path / "run"
    argv = ["run", "--backend", "inspect", "--model", "mockllm/model", "--benchmarks", "demo_prompt", "demo_refusal",
            "--limit", "4", "--num-samples", "2", "--temperature", "0.5", "--output", str(out), "--no-progress",
            "--backend-option", "memoize=false", "--backend-option", "max_connections=3"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["model"]["backend"] == "inspect"
    assert results["model"]["name"] == "mockllm/model"
    records = read_records(out / "samples.jsonl")
    assert len(records) == 2 * 4 * 2 and {r["sample"] for r in records} == {0, 1}
    assert results["benchmarks"]["demo_prompt"]["parse_failures"] == 0
