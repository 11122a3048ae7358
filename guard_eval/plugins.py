"""The plugin manager: built-ins and entry-point plugins, loaded the same way, failing one at a time.

Environment variables:

* ``GUARD_BENCH_LOAD_PLUGINS``: comma-separated entry-point names to load (empty string: none). Built-ins always load.
* ``GUARD_BENCH_TRACE_PLUGINS=1``: print every hook call and its result to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

import pluggy

from guard_eval import hookspecs

ENTRY_POINT_GROUP = "guard_bench"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "guard_eval.default_benchmarks",
    "guard_eval.default_backends",
    "guard_eval.default_models",
    "guard_eval.default_commands",
    "guard_train.experiment",
    "guard_eval.default_judges", "guard_eval.leaderboard.commands",
    "guard_train.default_methods", "guard_train.default_rewards",
    "guard_eval.human_eval.commands",
    "guard_eval.inspect_tasks.commands",
)


@dataclass(frozen=True)
class PluginError:
    """A plugin that failed to import, or whose hook raised; the other plugins keep working."""

    plugin: str
    where: str  # "import" or the hook name
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} failed in {self.where}: {self.error}"


class PluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.errors: list[PluginError] = []
        self.sources: dict[str, str] = {}  # plugin name -> "built-in" | "entry point <dist> <version>"

    def register_module(self, module_name: str, name: str | None = None, source: str = "built-in") -> None:
        name = name or module_name
        try:
            module = importlib.import_module(module_name)
            self.register(module, name=name)
        except Exception as e:  # noqa: BLE001 -- a broken plugin must not take the others down
            self.errors.append(PluginError(name, "import", f"{type(e).__name__}: {e}"))
            return
        self.sources[name] = source

    def load_entry_points(self, only: set[str] | None = None) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only is not None and ep.name not in only:
                continue
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
            self.register_module(ep.value, name=ep.name, source=f"entry point of {dist}")

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a registration hook on each plugin separately: ``[(plugin_name, item), ...]``.

        A plugin whose hook raises is recorded in :attr:`errors` and skipped.
        """
        out = []
        for impl in getattr(self.hook, hook_name).get_hookimpls():  # registration order
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as e:  # noqa: BLE001
                self.errors.append(PluginError(impl.plugin_name, hook_name, f"{type(e).__name__}: {e}"))
                if os.environ.get("GUARD_BENCH_TRACE_PLUGINS"):
                    traceback.print_exc()
                continue
            if os.environ.get("GUARD_BENCH_TRACE_PLUGINS"):
                print(f"[guard_bench] {hook_name} <- {impl.plugin_name}: {result!r}", file=sys.stderr)
            out.extend((impl.plugin_name, item) for item in (result or []))
        return out

    def registry(self, hook_name: str) -> dict[str, Any]:
        """``{name: item}`` for a registration hook; the same name from two plugins is an error naming both."""
        items: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, item in self.collect(hook_name):
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                self.errors.append(PluginError(plugin, hook_name, f"returned {item!r} without a string 'name'"))
                continue
            if name in items:
                raise ValueError(f"{hook_name}: {name!r} is registered by both {owner[name]!r} and {plugin!r}")
            items[name], owner[name] = item, plugin
        return items

    def owners(self, hook_name: str) -> dict[str, str]:
        return {getattr(item, "name", "?"): plugin for plugin, item in self.collect(hook_name)}


def make_plugin_manager(load_entry_points: bool = True) -> PluginManager:
    pm = PluginManager()
    for module_name in DEFAULT_PLUGINS:
        pm.register_module(module_name)
    if load_entry_points:
        only = os.environ.get("GUARD_BENCH_LOAD_PLUGINS")
        pm.load_entry_points(None if only is None else {n.strip() for n in only.split(",") if n.strip()})
    return pm


@cache
def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (built once; tests call ``get_plugin_manager.cache_clear()``)."""
    return make_plugin_manager()


def registry(hook_name: str) -> dict[str, Any]:
    return get_plugin_manager().registry(hook_name)
