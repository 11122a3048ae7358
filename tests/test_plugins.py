"""The plugin system: built-ins through the same hooks, entry-point plugins, failures isolated and named."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from guard_eval.cli import main
from guard_eval.hookspecs import hookimpl, hookspec
from guard_eval.plugins import DEFAULT_PLUGINS, get_plugin_manager, make_plugin_manager

REPO = Path(__file__).resolve().parent.parent


def install_fake_distribution(root: Path, name: str, module_source: str, entry_name: str | None = None) -> None:
    """A module plus a .dist-info declaring it under the guard_bench entry-point group, importable from ``root``."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[guard_bench]\n{entry_name or name} = {name}\n")


GOOD_PLUGIN = """
from guard_eval.benchmarks import Benchmark, read_simple
from guard_eval.hookspecs import hookimpl
from guard_eval.verdict import TaskType

@hookimpl
def guard_register_benchmarks():
    return [Benchmark("my_bench", TaskType.PROMPT, "Mine", read_simple, local="demo_prompt.jsonl", embedded=True)]
"""


def benchmarks_of(pm):
    return pm.registry(pm.hook.guard_register_benchmarks)


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_are_registered_like_plugins():
    pm = make_plugin_manager(load_entry_points=False)
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)
    assert not pm.errors
    assert {pm.sources[n] for n in DEFAULT_PLUGINS} == {"built-in"}
    assert not [m for m in DEFAULT_PLUGINS if not m.startswith("guard_eval.")]  # the host lists only its own modules
    assert not hasattr(pm.hook, "guard_register_rewards")  # training hooks come with guard_train


def test_guard_train_registers_its_builtins_and_hooks_through_its_entry_point(monkeypatch):
    monkeypatch.setenv("GUARD_BENCH_LOAD_PLUGINS", "")  # limits third-party plugins, never guard-bench's own
    pm = make_plugin_manager()
    train = {n: src for n, src in pm.sources.items() if n.startswith("guard_train.")}
    assert set(train) == {"guard_train.default_methods", "guard_train.default_rewards", "guard_train.experiment"}
    assert all(src.startswith("entry point of guard-bench ") for src in train.values())
    assert pm.hook.guard_register_rewards.spec.namespace.__name__ == "guard_train.hookspecs"
    assert {"sft", "dpo", "grpo"} <= set(pm.registry(pm.hook.guard_register_training_methods))


def test_entry_point_plugin_is_discovered_and_used(site, capsys):
    install_fake_distribution(site, "guard_fake_plugin", GOOD_PLUGIN)
    pm = make_plugin_manager()
    assert pm.sources["guard_fake_plugin"] == "entry point of guard_fake_plugin 0.1"
    bench = pm.registry(pm.hook.guard_register_benchmarks)["my_bench"]
    assert len(bench.load()) == 24
    assert main(["plugins"]) == 0
    assert "guard_fake_plugin  (entry point of guard_fake_plugin 0.1)" in capsys.readouterr().out


def test_broken_plugin_is_named_and_the_others_keep_working(site, capsys):
    install_fake_distribution(site, "guard_broken_import", "import does_not_exist_anywhere\n")
    install_fake_distribution(
        site, "guard_raising_hook",
        "from guard_eval.hookspecs import hookimpl\n@hookimpl\ndef guard_register_benchmarks():\n    raise RuntimeError('boom')\n",
    )  # fmt: skip
    pm = make_plugin_manager()
    errors = {(e.plugin, e.where) for e in pm.errors}
    benches = pm.registry(pm.hook.guard_register_benchmarks)
    assert "toxicchat" in benches  # built-ins unaffected
    errors |= {(e.plugin, e.where) for e in pm.errors}
    assert ("guard_broken_import", "import") in errors
    assert ("guard_raising_hook", "guard_register_benchmarks") in errors
    assert main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert "guard_broken_import" in err and "ModuleNotFoundError" in err and "boom" in err


def test_duplicate_names_are_an_error_naming_both_plugins(site):
    install_fake_distribution(site, "guard_dupe", GOOD_PLUGIN.replace('"my_bench"', '"toxicchat"'))
    with pytest.raises(ValueError, match="'toxicchat' is registered by both 'guard_eval.default_benchmarks' and 'guard_dupe'"):
        benchmarks_of(make_plugin_manager())


def test_load_plugins_env_var_limits_entry_points(site, monkeypatch):
    install_fake_distribution(site, "guard_fake_plugin", GOOD_PLUGIN)
    monkeypatch.setenv("GUARD_BENCH_LOAD_PLUGINS", "")
    assert "my_bench" not in benchmarks_of(make_plugin_manager())
    monkeypatch.setenv("GUARD_BENCH_LOAD_PLUGINS", "guard_fake_plugin")
    assert "my_bench" in benchmarks_of(make_plugin_manager())


def test_trace_env_var_prints_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv("GUARD_BENCH_TRACE_PLUGINS", "1")
    pm = make_plugin_manager(load_entry_points=False)
    pm.registry(pm.hook.guard_register_backends)
    assert "guard_register_backends <- guard_eval.default_backends" in capsys.readouterr().err


HOOKS = sorted(h for h in dir(make_plugin_manager().hook) if h.startswith("guard_"))


def test_every_hook_is_documented():
    """Meta-test (pytest/datasette style): a new hook needs a section in docs/plugins.md."""
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert len(HOOKS) >= 8
    for hook in HOOKS:
        assert re.search(rf"^#+ `?{hook}`?$", docs, re.M), f"{hook} is not documented in docs/plugins.md"


@pytest.mark.parametrize("hook", [h for h in HOOKS if h.startswith("guard_register_") and h != "guard_register_commands"])
def test_every_registration_hook_gives_named_items_from_the_builtins(hook):
    pm = get_plugin_manager()
    items = pm.registry(getattr(pm.hook, hook))
    assert items and not pm.errors
    assert all(item.name == name for name, item in items.items())


def test_command_hook_adds_commands_to_both_programs():
    import argparse

    pm = get_plugin_manager()
    for program, expected in (("guard-eval", {"run", "benchmarks", "plugins"}), ("guard-train", {"sft", "experiment", "rewards"})):
        subparsers = argparse.ArgumentParser().add_subparsers()
        pm.collect(pm.hook.guard_register_commands, program=program, subparsers=subparsers)
        assert expected <= set(subparsers.choices), program


def test_add_hookspecs_lets_a_plugin_bring_its_own_hook():
    class Specs:
        @staticmethod
        @hookspec
        def guard_register_widgets():
            """Widgets."""

    class Provider:
        @staticmethod
        @hookimpl
        def guard_add_hookspecs(pluginmanager):
            pluginmanager.add_hookspecs(Specs)

        @staticmethod
        @hookimpl
        def guard_register_widgets():
            return [type("W", (), {"name": "w1"})()]

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Provider(), name="widgets")
    assert list(pm.registry(pm.hook.guard_register_widgets)) == ["w1"]
