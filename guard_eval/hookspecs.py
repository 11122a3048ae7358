"""Hook specifications: everything guard-bench can be extended with.

Registration hooks return a list; the host flattens the lists of all plugins, and a name registered twice is an
error naming both plugins. Built-ins are plugins too (``guard_eval.plugins.DEFAULT_PLUGINS``); other plugins, guard_train's
built-ins included, are found through the ``guard_bench`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points.guard_bench]
    my_plugin = "my_package.plugin"      # a module with @hookimpl functions

Each object a hook returns has a unique ``name`` attribute. guard_train's hooks (rewards, training methods) live in
:mod:`guard_train.hookspecs`, added through ``guard_add_hookspecs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import argparse

    from guard_eval.benchmarks import Benchmark
    from guard_eval.generation import BackendSpec
    from guard_eval.judging import JudgeSpec
    from guard_eval.model_sources import ModelSource

PROJECT = "guard_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------------------------
# Plugin manager
# ---------------------------------------------------------------------------------------------------------------------


@hookspec(historic=True)
def guard_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add a plugin package's own hook specifications (pytest's ``pytest_addhooks``).

    Called once for every plugin, when it is registered.

    :param pluginmanager: the guard-bench plugin manager; call ``pluginmanager.add_hookspecs(module)``.
    """


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------------


@hookspec
def guard_register_benchmarks() -> list[Benchmark]:
    """Register benchmarks (test sets with a task type and a gold-label mapping).

    :return: :class:`guard_eval.benchmarks.Benchmark` objects. Their ``name`` is what ``guard-eval run --benchmarks``,
        the Inspect task names and the lm-eval task names use.
    """


@hookspec
def guard_register_backends() -> list[BackendSpec]:
    """Register text-generation backends (HF transformers, vLLM, an Inspect model, ...).

    :return: :class:`guard_eval.generation.BackendSpec` objects. ``backend="auto"`` picks the available spec with the
        highest ``priority``.
    """


@hookspec
def guard_register_model_sources() -> list[ModelSource]:
    """Register named models that ``--model NAME`` (and every config's ``model:``) resolves to a local dir.

    :return: :class:`guard_eval.model_sources.ModelSource` objects: a ``name`` and a ``materialize(out_dir,
        from_file)`` function that writes a plain HF dir (or a LoRA adapter dir); ``guard-eval models pull NAME``
        caches it once.
    """


@hookspec
def guard_register_judges() -> list[JudgeSpec]:
    """Register reasoning-quality judges.

    :return: :class:`guard_eval.judging.JudgeSpec` objects: a ``name`` and a factory building a judge whose
        ``score`` method turns traces into 0-100 scores with the four rubric components (correctness, coherence,
        relevance, specificity).
    """


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


@hookspec
def guard_register_commands(program: str, subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to a command-line program.

    :param program: ``"guard-eval"`` or ``"guard-train"``; add commands only to the program you extend.
    :param subparsers: the program's ``argparse`` sub-parsers. Set ``func`` on your parser with
        ``parser.set_defaults(func=callable)``; it is called with the parsed ``argparse.Namespace`` and its return
        value becomes the exit code.
    """
