"""``guard_bench.json`` next to each checkpoint: what made it, so leaderboards can label it and re-runs can skip it.

The file is written last, so its presence (with ``complete: true``) also marks a finished output dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from guard_eval.modeling import CHECKPOINT_METADATA, adapter_base, checkpoint_metadata, is_adapter
from guard_eval.results.rundir import now

SCHEMA = "guard-bench/checkpoint/v1"


def data_hash(records: Any) -> str:
    """A short content hash of training data (any JSON-serialisable value): same data, same hash.

    >>> data_hash([{"a": 1}]) == data_hash([{"a": 1}]), data_hash([{"a": 1}]) == data_hash([{"a": 2}])
    (True, False)
    """
    blob = json.dumps(records, sort_keys=True, ensure_ascii=False, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("guard-bench", "torch", "transformers", "trl", "peft"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def lineage(model: str) -> dict[str, Any]:
    """``base`` (the root model) and ``parent`` (the input checkpoint) for a method's input ``model``."""
    parent = checkpoint_metadata(model) if Path(model).is_dir() else {}
    base = parent.get("base") or (adapter_base(model) if is_adapter(model) else model)
    return {"base": base, "parent": model if parent or is_adapter(model) else None,
            "parent_method": parent.get("method"), "parent_data_hash": (parent.get("data") or {}).get("hash")}  # fmt: skip


def write_metadata(
    output_dir: str | Path,
    method: str,
    model: str,
    config: dict[str, Any],
    data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``OUTPUT_DIR/guard_bench.json`` (atomically) and return it. ``model`` is the method's input model."""
    meta = {
        "schema": SCHEMA, "method": method, **lineage(model), "data": data or {}, "config": config,
        "metrics": metrics or {}, **extra, "versions": _versions(),
        "created": now(), "complete": True,
    }  # fmt: skip
    path = Path(output_dir) / CHECKPOINT_METADATA
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    shutil.rmtree(path.parent / ".replaced", ignore_errors=True)  # what `overwrite: true` set aside: replaced now
    return meta


def is_finished(output_dir: str | Path) -> bool:
    return bool(checkpoint_metadata(str(output_dir)).get("complete"))
