"""Heavy imports stay late: the CLI and config import no ML stack, reward/ never does."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]
HEAVY = ("torch", "vllm", "ray", "trl", "peft", "transformers")


def _modules_loaded_by(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_cli_and_config_import_no_heavy_library():
    loaded = _modules_loaded_by("import rlcoder.cli.main, rlcoder.config, rlcoder.records")
    assert not loaded & set(HEAVY)


def test_reward_package_imports_no_heavy_library():
    names = [m.name for m in pkgutil.walk_packages([str(ROOT / "reward")], prefix="reward.")]
    names = [n for n in names if not n.endswith("__main__")]
    loaded = _modules_loaded_by("import reward\n" + "\n".join(f"import {n}" for n in names))
    assert not loaded & set(HEAVY)


def test_no_rlcoder_module_imports_vllm_at_import_time():
    names = [m.name for m in pkgutil.walk_packages([str(ROOT / "rlcoder")], prefix="rlcoder.")]
    names = [n for n in names if not n.endswith("__main__")]
    assert "rlcoder.cli.main" in names
    loaded = _modules_loaded_by("\n".join(f"import {n}" for n in names))
    assert "vllm" not in loaded
