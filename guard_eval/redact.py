"""Secret-looking keys never reach a file: everything a command writes (results.json, judged.jsonl) goes through here.

Keys are matched by name, not value: ``api_key``, ``openai_api_key``, ``token``, ``hf_token``, ``password``,
``secret``, ``authorization``, ``credentials``, ``private_key`` ... (``max_new_tokens`` or ``output_tokens`` are not
secrets and are kept). API keys belong in the environment (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``HF_TOKEN``),
where the Inspect and HF clients read them; docs/judging.md says so.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

_SECRET_KEY = re.compile(
    r"(?:^|[_\-.\s])(?:api[_\-]?key|apikey|(?:access|auth|bearer|refresh|session|id)?[_\-]?token|password|passwd|"
    r"passphrase|secret|client[_\-]?secret|authorization|auth|credentials?|private[_\-]?key|access[_\-]?key)(?:$|[_\-.\s])",
    re.IGNORECASE,
)


def is_secret_key(key: Any) -> bool:
    """
    >>> [is_secret_key(k) for k in ("api_key", "OPENAI_API_KEY", "hf_token", "Authorization", "max_new_tokens", "model")]
    [True, True, True, True, False, False]
    """
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, scalars) with the values of secret-looking keys replaced.

    >>> redact({"model": "openai/gpt-4o-mini", "model_args": {"api_key": "sk-123", "base_url": "u"}})
    {'model': 'openai/gpt-4o-mini', 'model_args': {'api_key': '<redacted>', 'base_url': 'u'}}
    """
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def secret_keys(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the secret-looking keys in ``value`` (to warn that they belong in the environment)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}{k}"
            if is_secret_key(k) and v not in (None, ""):
                found.append(path)
            else:
                found += secret_keys(v, path + ".")
    elif isinstance(value, (list, tuple)):
        for v in value:
            found += secret_keys(v, prefix)
    return found
