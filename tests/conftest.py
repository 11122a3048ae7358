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
# Triton kernels run on CPU under its interpreter, which must be on before triton is first imported (its standard
# library is decorated then); on CPU nothing picks Triton unless asked (decode_attention="triton").
os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parent.parent


def _register_checkout_entry_points() -> None:
    """Make the checkout's entry points (pyproject.toml) visible when the installed metadata is older.

    guard_train's built-ins come through the ``guard_bench`` entry-point group, so a checkout whose editable install
    predates a new entry point would miss them until ``pip install --no-deps -e .`` is rerun. A ``guard-bench``
    .dist-info generated from pyproject.toml, put first on ``sys.path`` (and ``PYTHONPATH`` for subprocesses), takes
    the installed one's place for :mod:`importlib.metadata`.
    """
    import tempfile
    import tomllib
    from importlib import metadata

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {(g, n, v) for g, eps in project.get("entry-points", {}).items() for n, v in eps.items()}
    try:
        installed = {(ep.group, ep.name, ep.value) for ep in metadata.distribution(project["name"]).entry_points}
    except metadata.PackageNotFoundError:
        installed = set()
    if wanted <= installed:
        return
    root = Path(tempfile.mkdtemp(prefix="guard-bench-entry-points-"))
    info = root / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups: dict[str, list[str]] = {}
    for group, name, value in sorted(wanted):
        groups.setdefault(group, []).append(f"{name} = {value}")
    (info / "entry_points.txt").write_text("".join(f"[{g}]\n" + "\n".join(lines) + "\n\n" for g, lines in groups.items()))
    import sys

    sys.path.insert(0, str(root))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), str(REPO), os.environ.get("PYTHONPATH")) if p)


_register_checkout_entry_points()


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


# ---------------------------------------------------------------------------------------------------------------------
# The `slow` marker: `pytest -m "not slow"` is the quick loop, so a test over SLOW_SECONDS must carry it
# ---------------------------------------------------------------------------------------------------------------------

SLOW_SECONDS = 5.0
_unmarked_slow: list[tuple[str, float]] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.duration > SLOW_SECONDS and "slow" not in report.keywords:
        _unmarked_slow.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter):
    if _unmarked_slow:
        terminalreporter.section("tests over %.0f s without the slow marker" % SLOW_SECONDS)
        for nodeid, seconds in sorted(_unmarked_slow, key=lambda x: -x[1]):
            terminalreporter.write_line(f"{seconds:6.1f}s  {nodeid}")
