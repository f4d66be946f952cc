"""The `rlcoder` command in a subprocess, as a user runs it: from the repository root, offline, this
checkout's code first on the path."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO


def rlcoder_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "rlcoder", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
