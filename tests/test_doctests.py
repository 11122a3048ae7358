"""Every docstring example in guard_eval, guard_train and the example plugins runs (``>>>`` lines are tests too)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN_MODULES = {"guard_bench_constitution.plugin": "guard-bench-constitution",
                  "guard_bench_ai_feedback.plugin": "guard-bench-ai-feedback"}  # fmt: skip


def modules_with_examples() -> list[str]:
    """Names of the modules whose source holds a ``>>>`` example (found without importing them)."""
    names = []
    for package in ("guard_eval", "guard_train"):
        for info in pkgutil.walk_packages([str(REPO / package)], prefix=f"{package}."):
            path = REPO / (info.name.replace(".", "/") + ("/__init__.py" if info.ispkg else ".py"))
            if path.is_file() and ">>> " in path.read_text(encoding="utf-8"):
                names.append(info.name)
    for name, folder in PLUGIN_MODULES.items():
        if ">>> " in (REPO / "plugins" / folder / (name.replace(".", "/") + ".py")).read_text(encoding="utf-8"):
            names.append(name)
    return sorted(names)


MODULES = modules_with_examples()


def test_the_documented_examples_are_found():
    assert {"guard_eval.verdict", "guard_eval.metrics", "guard_bench_constitution.plugin"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, monkeypatch):
    if name in PLUGIN_MODULES:
        monkeypatch.syspath_prepend(str(REPO / "plugins" / PLUGIN_MODULES[name]))
    top = name.partition(".")[0]
    try:
        module = importlib.import_module(name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        if name in PLUGIN_MODULES:  # a plugin imported from its source folder: leave no trace in sys.modules
            for loaded in [m for m in sys.modules if m.partition(".")[0] == top]:
                del sys.modules[loaded]
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
