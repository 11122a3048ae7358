"""Method configs: YAML files whose keys map onto dataclasses, checked before any training starts.

A method's config is a ``kw_only`` dataclass (TRL style): each field's ``metadata["help"]`` is also its CLI help, and
``__post_init__`` checks every value against the field's type, so a config built any way (YAML, CLI, Python, the
experiment pipeline) fails on a wrong type with the key's name. :func:`load_config` adds the file's name and rejects
unknown keys; :meth:`MethodConfig.validate` checks that files and models exist (run functions call it first)::

    # configs/dpo.yaml                        guard-train dpo --config configs/dpo.yaml --beta 0.2 --set lora_r=8
    model: runs/sft
    data: runs/prefs/pairs.jsonl
    beta: 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError, TypeError):
    """A bad config value or key. Also a ``TypeError`` so that callers catching constructor errors see it."""


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A config field with CLI help; mutable defaults are copied per instance."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


def _check(key: str, value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint`` (ints and YAML's ``5e-6`` strings widen to floats, a string to a one-item list),
    else :class:`ConfigError`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(key, value, arg)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_describe(hint)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if isinstance(value, str) and args and args[0] is str:
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return [_check(f"{key}[{i}]", v, args[0] if args else Any) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        kt, vt = args or (Any, Any)
        return {_check(key, k, kt): _check(f"{key}.{k}", v, vt) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 5e-6 (no dot) as a string
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _describe(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint)) or str(hint)


@dataclass(kw_only=True)
class MethodConfig:
    """Fields every method has: where the model comes from and where the result goes."""

    model: str = option(help="input checkpoint: a local HF dir, a LoRA adapter dir, a hub id, or 'tiny' (the "
                        "embedded tiny Llama, built into OUTPUT_DIR/tiny-base)", path="model")  # fmt: skip
    output_dir: str = option(help="where the result is written; a finished one is reused unless overwrite")
    seed: int = option(0, help="random seed (data order, sampling, LoRA init)")
    overwrite: bool = option(False, help="redo a finished output_dir instead of returning it")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check(f.name, getattr(self, f.name), hints[f.name]))
        for f in dataclasses.fields(self):
            if f.metadata.get("min") is not None and getattr(self, f.name) is not None:
                if getattr(self, f.name) < f.metadata["min"]:
                    raise ConfigError(f"{f.name}: must be >= {f.metadata['min']}, got {getattr(self, f.name)!r}")

    def validate(self) -> None:
        """Check what exists outside the config (files, models, registered names); run functions call it first."""
        for f in dataclasses.fields(self):
            kind, value = f.metadata.get("path"), getattr(self, f.name)
            if kind == "model":
                check_model(value, f.name)
            elif kind == "file" and value is not None and not Path(value).expanduser().exists():
                raise FileNotFoundError(f"{f.name}: file not found: {value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_model(model: str, key: str = "model") -> None:
    """A model must be 'tiny', a named model source, a .gguf file, an existing HF/adapter dir, or a hub id (available in the cache when offline)."""
    if model == "tiny":
        return
    from guard_eval.model_sources import sources

    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file() or not path.exists() and model in sources():
        return  # a named model source or a GGUF file: materialised on first use
    if path.is_dir():
        if not any((path / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise FileNotFoundError(f"{key}: {model} is a directory without config.json or adapter_config.json")
        return
    if not _HUB_ID.fullmatch(model):
        raise FileNotFoundError(f"{key}: model not found: {model}")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise FileNotFoundError(f"{key}: model not found: {model} (no such dir, and HF_HUB_OFFLINE=1 with no cached copy)")


# ---------------------------------------------------------------------------------------------------------------------
# Loading: YAML + overrides
# ---------------------------------------------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:  # one line: file:line:column and the problem
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: invalid YAML: {getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw


def parse_overrides(pairs: Sequence[str], cls: type | None = None) -> dict[str, Any]:
    """``["beta=0.2", "rewards.format_valid=0.5"]`` -> ``{"beta": 0.2, "rewards": {"format_valid": 0.5}}``.

    Values follow :func:`guard_eval.options.parse_value` (``0.2`` a float, ``true`` a bool, ``[a, b]`` a list); a
    value for a text field of ``cls`` (``output_dir``, ``model``, ...) stays the text as typed, so ``my run #2`` and
    ``2024`` are paths. A dotted key sets one entry of a mapping field.

    >>> parse_overrides(["beta=0.2", "data=[demo, x.jsonl]", "rewards.label_accuracy=1"])
    {'beta': 0.2, 'data': ['demo', 'x.jsonl'], 'rewards': {'label_accuracy': 1}}
    >>> parse_overrides(["output_dir=2024", "model=my run #2"], MethodConfig)
    {'output_dir': '2024', 'model': 'my run #2'}
    """
    from guard_eval.options import parse_value, split_pairs

    hints = typing.get_type_hints(cls) if cls is not None else {}
    try:
        texts = split_pairs(pairs, "override")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    out: dict[str, Any] = {}
    for key, text in texts.items():
        head, dot, rest = key.partition(".")
        if dot:
            out.setdefault(head, {})[rest] = parse_value(text)
        else:
            out[head] = text if _is_text(hints.get(head)) and text.strip() not in ("null", "~") else parse_value(text)
    return out


def _is_text(hint: Any) -> bool:
    """``str`` or ``str | None``: a field whose command-line value is taken as typed."""
    return hint is str or set(typing.get_args(hint)) == {str, type(None)}


def check_keys(cls: type, raw: Mapping[str, Any], where: str) -> None:
    """Every key of ``raw`` is a field of ``cls``; else an error naming ``where``, the key and its nearest field."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint} for {cls.__name__}; keys: {', '.join(names)}")


def build_config(cls: type, raw: Any, where: str):
    """``cls(**raw)`` with errors naming ``where`` (the file) and the key.

    Works for any dataclass: unknown and missing keys are errors, a field typed as a dataclass is built from its
    mapping (errors then name ``file: field: key``), and every value is checked against its field's type.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(raw).__name__} {raw!r}")
    check_keys(cls, raw, where)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in raw
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        nested = next((t for t in typing.get_args(hints[key]) or (hints[key],) if dataclasses.is_dataclass(t)), None)
        if nested is not None and value is not None:
            kwargs[key] = build_config(nested, value, f"{where}: {key}")
            continue
        try:
            kwargs[key] = _check(key, value, hints[key])
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_config(cls: type, path: str | Path | None = None, overrides: Mapping[str, Any] | Sequence[str] = ()):
    """The config in ``path`` (YAML) with ``overrides`` (a mapping, or ``KEY=VALUE`` strings) applied on top.

    Errors name the file for keys that come from it, and "command line" for overrides.
    """
    raw = read_yaml(path) if path else {}
    extra = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides, cls)
    check_keys(cls, raw, str(path))
    check_keys(cls, extra, "command line")
    merged = dict(raw)
    for key, value in extra.items():  # a dotted override (rewards.x=1) sets one entry of the file's mapping
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    try:
        return build_config(cls, merged, str(path) if path else "command line")
    except ConfigError as e:
        key = re.match(r"[^:]*: (\w+)", str(e))
        if path and key and key.group(1) in extra:  # the bad value came from the command line, not the file
            raise ConfigError(str(e).replace(f"{path}: ", f"{path} + command line: ", 1)) from None
        raise


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """``--config FILE``, ``--set KEY=VALUE`` and one ``--<field>`` per config field (help from the metadata)."""
    parser.add_argument("--config", help="YAML file whose keys are the options below")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key (repeatable; values are YAML; KEY.SUB sets one entry of a mapping)")  # fmt: skip
    group = parser.add_argument_group("config keys (YAML keys; --key VALUE overrides the file)")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = "required" if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING else (
            f"default: {f.default if f.default is not dataclasses.MISSING else f.default_factory()!r}")
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", metavar=_metavar(hints[f.name]),
                           default=argparse.SUPPRESS, help=f"{f.metadata.get('help', '')} ({default})")  # fmt: skip


def _metavar(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "{" + ",".join(map(str, typing.get_args(hint))) + "}"
    if origin in (list, dict):
        return "LIST" if origin is list else "MAPPING"
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return _metavar(args[0]) if typing.get_origin(args[0]) else getattr(args[0], "__name__", "VALUE").upper()


def config_from_args(cls: type, args: argparse.Namespace):
    """The config from ``--config``, then ``--set`` pairs, then ``--<field>`` options (the last one wins)."""
    pairs = list(args.set)
    pairs += [f"{k.removeprefix('cfg_')}={v}" for k, v in vars(args).items() if k.startswith("cfg_")]
    return load_config(cls, args.config, pairs)
