"""``KEY=VALUE`` command-line options: one grammar for ``--judge-option``, ``--backend-option`` and guard-train's
``--set`` and ``--<key>`` flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

_NULLS = ("null", "Null", "NULL", "~")


def split_pairs(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``: the text of each value, unparsed.

    >>> split_pairs(["model=openai/gpt-4o-mini", "args=a=b"], "--judge-option")
    {'model': 'openai/gpt-4o-mini', 'args': 'a=b'}
    >>> split_pairs(["oops"], "--set")
    Traceback (most recent call last):
    ...
    ValueError: --set 'oops': expected KEY=VALUE
    """
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key.strip()] = text
    return out


def parse_value(text: str) -> Any:
    """A value typed on the command line: YAML (so JSON too) for numbers, booleans, null, lists and mappings;
    any other text is kept exactly as typed (no YAML comments, dates or stripped quotes).

    >>> parse_value("0.2"), parse_value("true"), parse_value("[demo, x.jsonl]"), parse_value('{"api_key": "k"}')
    (0.2, True, ['demo', 'x.jsonl'], {'api_key': 'k'})
    >>> parse_value("my run #2"), parse_value("2024-01-01"), parse_value("openai/gpt-4o-mini"), parse_value("")
    ('my run #2', '2024-01-01', 'openai/gpt-4o-mini', '')
    """
    if not text.strip():
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None:
        return None if text.strip() in _NULLS else text
    if isinstance(value, str) and text.strip()[0] in "\"'":
        return value  # explicitly quoted: the text inside the quotes
    return value if isinstance(value, bool | int | float | list | dict) else text


def parse_options(pairs: Sequence[str] | None, flag: str = "--judge-option") -> dict[str, Any]:
    """``["model=openai/gpt-4o-mini", "retries=3"]`` -> ``{"model": "openai/gpt-4o-mini", "retries": 3}``."""
    return {key: parse_value(text) for key, text in split_pairs(pairs, flag).items()}
