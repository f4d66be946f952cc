"""End to end: Ctrl-C during GRPO stops `rlcoder train` cleanly: exit 130 with one line, every
process it started (Ray, the reward service, the rollout actor) gone, and the run resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rlcoder.run_dir import RunDir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
# GRPO straight from the tiny model (no SFT, no evaluation): only the interrupt is under test.
OVERRIDES = [
    "stages=[grpo]",
    "data.limit=2",
    "learner.steps=500",  # far more than run before the interrupt
    "learner.prompts_per_step=2",
    "rollout.samples_per_prompt=4",
    "learner.completions_per_device_batch=8",
    "rollout.max_new_tokens=32",
    "eval.around_rl=false",
]

# A shell without job control starts background commands (`.ci/run &`, nohup) with SIGINT ignored and
# children inherit that; a job in a terminal's foreground has the default disposition, so the run gets
# that back before it starts (an ignored SIGINT never becomes a KeyboardInterrupt).
AS_A_FOREGROUND_JOB = "; ".join(
    [
        "import os, signal, sys",
        "signal.signal(signal.SIGINT, signal.SIG_DFL)",
        "os.execv(sys.argv[1], sys.argv[1:])",
    ]
)


def test_ctrl_c_stops_the_run_cleanly(tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [sys.executable, "-c", AS_A_FOREGROUND_JOB, sys.executable, "-m", "rlcoder", "train"]
    cmd += ["--config", "configs/laptop.yaml", f"run_dir={run_dir}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd + OVERRIDES,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while "[grpo] step 1/" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "no GRPO step within 10 minutes"
            time.sleep(0.5)
        started = psutil.Process(proc.pid).children(recursive=True)
        assert started, "the run started no processes (reward service, Ray)?"

        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground group
        assert proc.wait(timeout=120) == 130, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    assert "rlcoder: interrupted" in log.read_text()
    _, alive = psutil.wait_procs(started, timeout=60)
    assert not alive, f"left running after Ctrl-C: {[(p.pid, p.name()) for p in alive]}"
    grpo = RunDir(run_dir).stage("grpo")
    assert not grpo.is_done()
    assert grpo.recorded_steps(), "step 1 was printed but not recorded"
