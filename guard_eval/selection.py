"""Which benchmarks a command evaluates: names and suites resolved against the registry, and whether their data is
there — checked before anything is generated."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from guard_eval.benchmarks import DATA_DIR_ENV, Benchmark, BenchmarkDataError, Source, resolve_data_dir


def missing_data(bench: Benchmark, data_dir: str | os.PathLike | None = None, source: Source = "auto") -> str | None:
    """Why ``bench`` cannot be loaded (one line naming the expected file and the hub fallback), or None; no I/O
    beyond a file-exists check."""
    path = bench.local_path(data_dir)
    if bench.embedded or (source != "hub" and path is not None and path.exists()):
        return None
    offline = any(os.environ.get(v) == "1" for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if source != "local" and bench.hub is not None and not offline:
        return None
    where = f"{path}" if path else f"{bench.local} under the data dir (none found: pass --data-dir or set ${DATA_DIR_ENV})"
    hub = f"hub {bench.hub.path} {'unavailable offline' if offline else 'not allowed by --source local'}" if bench.hub \
        else "no hub fallback"  # fmt: skip
    return f"no data: expected {where}; {hub}"


def resolve_benchmarks(
    names: Iterable[str], data_dir: str | os.PathLike | None = None, source: Source = "auto", check_data: bool = False,
    warn: Callable[[str], None] | None = None,
) -> list[Benchmark]:
    """Benchmark objects for names or suite names (``guardreasoner``, ``demo``, ``prompt``, ...).

    With ``check_data``: a benchmark named on its own whose data is absent is an error (:class:`BenchmarkDataError`,
    one line); one that a suite brought in is skipped with one warning line each, before anything is generated.
    """
    from guard_eval.default_benchmarks import SUITES
    from guard_eval import plugins

    known = plugins.benchmarks()
    out: list[Benchmark] = []
    for name in names:
        for n in SUITES.get(name, (name,)):
            if n not in known:
                raise KeyError(
                    f"unknown benchmark {n!r}; known: {', '.join(sorted(known))}; suites: {', '.join(sorted(SUITES))}"
                )
            reason = missing_data(known[n], data_dir, source) if check_data and name not in SUITES else None
            if reason:
                raise BenchmarkDataError(f"benchmark {n!r}: {reason}")
            if known[n] not in out:
                out.append(known[n])
    return with_data(out, data_dir, source, warn, f"no benchmark of {', '.join(names)}") if check_data else out


def with_data(benchmarks: Iterable[Benchmark], data_dir: str | os.PathLike | None = None, source: Source = "auto",
              warn: Callable[[str], None] | None = None, what: str = "no benchmark") -> list[Benchmark]:  # fmt: skip
    """The benchmarks whose data is there; the others are skipped with one warning line per missing file, and none
    left is an error."""
    kept, skipped = [], {}
    for bench in benchmarks:
        reason = missing_data(bench, data_dir, source)
        if reason:
            skipped.setdefault(reason, []).append(bench.name)
        else:
            kept.append(bench)
    if not kept:
        raise BenchmarkDataError(f"{what} has data under {resolve_data_dir(data_dir)}; "
                                 "see `guard-eval benchmarks --count`")  # fmt: skip
    for reason, names in skipped.items():
        (warn or (lambda m: print(m, file=sys.stderr)))(f"warning: skipping {', '.join(names)}: {reason}")
    return kept
