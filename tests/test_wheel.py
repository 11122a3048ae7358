"""The built wheel works without a checkout: benchmarks, guard_train's plugins, an Inspect task and an lm-eval task."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A wheel built from a copy of the checkout, installed (no deps) into a fresh venv that sees the system packages."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "tests", "runs", "logs", "build", "dist", "*.egg-info", "__pycache__", "shared"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"),
         str(source)], root, env)  # fmt: skip
    (wheel,) = (root / "dist").glob("guard_bench-*.whl")
    venv.create(root / "venv", system_site_packages=True, with_pip=False)
    python = root / "venv" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)], root, env)  # fmt: skip
    env["PATH"] = f"{root / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return root / "venv", env


def test_wheel_runs_benchmarks_inspect_and_lm_eval(wheel_venv, tiny_model, tmp_path):
    venv_dir, env = wheel_venv
    python = str(venv_dir / "bin" / "python")
    where = run([python, "-c", "import guard_eval, guard_train; print(guard_eval.__file__, guard_train.__file__)"], tmp_path, env)
    assert str(REPO) not in where and str(venv_dir) in where  # the wheel, not the checkout

    assert "demo_prompt" in run([str(venv_dir / "bin" / "guard-eval"), "benchmarks"], tmp_path, env)
    assert "label_accuracy" in run([str(venv_dir / "bin" / "guard-train"), "rewards"], tmp_path, env)
    include = run([str(venv_dir / "bin" / "guard-eval"), "lm-eval-path"], tmp_path, env).strip()
    assert include.startswith(str(venv_dir)) and Path(include, "guard_demo_prompt.yaml").is_file()

    run([python, "-m", "inspect_ai", "eval", "guard_eval/demo_prompt", "--limit", "2", "--model", "hf/local",
         "-M", f"model_path={tiny_model}", "--max-tokens", "4", "--log-dir", str(tmp_path / "logs"), "--display", "none"],
        tmp_path, env)  # fmt: skip
    assert list((tmp_path / "logs").glob("*.eval"))
    run([python, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
         "guard_demo_prompt", "--include_path", include, "--limit", "2", "--gen_kwargs", "max_gen_toks=4",
         "--device", "cpu", "--output_path", str(tmp_path / "lm")], tmp_path, env)  # fmt: skip
    assert list((tmp_path / "lm").rglob("results_*.json"))
