"""The plugin manager: built-ins and entry-point plugins, loaded the same way, failing one at a time.

guard_eval's own plugins are :data:`DEFAULT_PLUGINS`; everything else, guard_train's built-ins included, comes through
the ``guard_bench`` entry-point group. A plugin package may bring hooks of its own through ``guard_add_hookspecs``
(guard_train adds its training hooks that way).

Environment variables:

* ``GUARD_BENCH_LOAD_PLUGINS``: comma-separated entry-point names to load (empty string: none). Built-ins, and the
  entry points of the guard-bench distribution itself, always load.
* ``GUARD_BENCH_TRACE_PLUGINS=1``: print every hook call and its result to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from guard_eval import hookspecs

if TYPE_CHECKING:
    from guard_eval.benchmarks import Benchmark
    from guard_eval.generation import BackendSpec
    from guard_eval.judging import JudgeSpec
    from guard_eval.model_sources import ModelSource

T = TypeVar("T")
ENTRY_POINT_GROUP = "guard_bench"
DISTRIBUTION = "guard-bench"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "guard_eval.default_benchmarks",
    "guard_eval.default_backends",
    "guard_eval.default_models",
    "guard_eval.default_commands",
    "guard_eval.default_judges",
    "guard_eval.leaderboard.commands",
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
        self.sources: dict[str, str] = {}  # plugin name -> "built-in" | "entry point of <dist> <version>"
        self.hook.guard_add_hookspecs.call_historic(kwargs={"pluginmanager": self})

    def register_module(self, module_name: str, name: str | None = None, source: str = "built-in") -> None:
        name = name or module_name
        try:
            module = importlib.import_module(module_name)
            self.register(module, name=name)
        except (Exception, SystemExit) as e:  # noqa: BLE001 -- a broken plugin must not take the others down
            what = f"SystemExit({e.code!r}) at import" if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"
            self.errors.append(PluginError(name, "import", what))
            sys.modules.pop(module_name, None)
            return
        self.sources[name] = source

    def load_entry_points(self, only: set[str] | None = None) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            own = ep.dist is not None and ep.dist.name == DISTRIBUTION
            if (only is not None and ep.name not in only and not own) or self.has_plugin(ep.name):
                continue
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
            self.register_module(ep.value, name=ep.name, source=f"entry point of {dist}")

    def _caller(self, hook: pluggy.HookCaller | str) -> pluggy.HookCaller | None:
        return getattr(self.hook, hook, None) if isinstance(hook, str) else hook

    def collect(self, hook: pluggy.HookCaller | str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a registration hook on each plugin separately: ``[(plugin_name, item), ...]``.

        A plugin whose hook raises, or returns something other than a list, is recorded in :attr:`errors` and skipped.
        A hook nobody specified (guard_train not installed, say) gives an empty list.
        """
        caller = self._caller(hook)
        if caller is None:
            return []
        trace = os.environ.get("GUARD_BENCH_TRACE_PLUGINS")
        out = []
        for impl in caller.get_hookimpls():  # registration order
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except (Exception, SystemExit) as e:  # noqa: BLE001
                self.errors.append(PluginError(impl.plugin_name, caller.name, f"{type(e).__name__}: {e}"))
                if trace:
                    traceback.print_exc()
                continue
            if trace:
                print(f"[guard_bench] {caller.name} <- {impl.plugin_name}: {result!r}", file=sys.stderr)
            if result is not None and not isinstance(result, list | tuple):
                self.errors.append(PluginError(impl.plugin_name, caller.name,
                                               f"returned {type(result).__name__} {result!r}, expected a list"))  # fmt: skip
                continue
            out.extend((impl.plugin_name, item) for item in (result or []))
        return out

    def registry(self, hook: pluggy.HookCaller | str) -> dict[str, Any]:
        """``{name: item}`` for a registration hook; the same name from two plugins is an error naming both."""
        items: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, item in self.collect(hook):
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                self.errors.append(PluginError(plugin, self._caller(hook).name, f"returned {item!r} without a string 'name'"))
                continue
            if name in items:
                raise ValueError(f"{self._caller(hook).name}: {name!r} is registered by both {owner[name]!r} and {plugin!r}")
            items[name], owner[name] = item, plugin
        return items

    def owners(self, hook: pluggy.HookCaller | str) -> dict[str, str]:
        """``{item name: plugin name}`` for a registration hook."""
        return {getattr(item, "name", "?"): plugin for plugin, item in self.collect(hook)}


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


# ---------------------------------------------------------------------------------------------------------------------
# Typed accessors: what the registration hooks provide, by name
# ---------------------------------------------------------------------------------------------------------------------


def benchmarks() -> dict[str, Benchmark]:
    return get_plugin_manager().registry("guard_register_benchmarks")


def backends() -> dict[str, BackendSpec]:
    return get_plugin_manager().registry("guard_register_backends")


def model_sources() -> dict[str, ModelSource]:
    return get_plugin_manager().registry("guard_register_model_sources")


def judges() -> dict[str, JudgeSpec]:
    return get_plugin_manager().registry("guard_register_judges")


def lookup(registry: Mapping[str, T], name: str, what: str, error: Callable[[str], Exception] = KeyError) -> T:
    """``registry[name]``, else ``error("unknown <what> 'name'; registered: a, b")``."""
    if name not in registry:
        raise error(f"unknown {what} {name!r}; registered: {', '.join(sorted(registry)) or 'none'}")
    return registry[name]
