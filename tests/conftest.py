"""Shared fixtures: offline environment, the tiny local model, and the shared data dir (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")

REPO = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("GUARD_DATA_DIR"), REPO.parent / "shared" / "data", REPO / "shared" / "data"):
        if candidate and (Path(candidate) / "guardreasoner" / "benchmark").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shared data (GuardReasoner test sets, JBB); tests using it skip cleanly when it is absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("shared data not found (set GUARD_DATA_DIR to the folder holding guardreasoner/ and jbb/)")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Llama with a BPE tokenizer and chat template, built once per test session."""
    from guard_eval.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _fresh_plugin_manager():
    """Each test sees a freshly built plugin manager (tests register and break plugins)."""
    from guard_eval.plugins import get_plugin_manager

    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()
