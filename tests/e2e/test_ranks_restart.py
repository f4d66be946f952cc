"""End to end: `rlcoder train` with 2 PPO learner ranks (Ray Train) on the tiny model; killing rank 1
mid-run makes Ray Train restart the group, every rank resumes from the last complete checkpoint, and
the run finishes with every step recorded exactly once (none lost, none repeated)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcoder.run_dir import RunDir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
STEPS = 5
OVERRIDES = [
    "stages=[ppo]",
    "learner.num_processes=2",
    f"learner.steps={STEPS}",
    "learner.prompts_per_step=4",
    "rollout.samples_per_prompt=2",
    "learner.completions_per_device_batch=2",
    "learner.ppo.completions_per_minibatch=4",
    "data.limit=4",
    "eval.around_rl=false",
    "ray.num_cpus=4",  # logical: 1 rollout worker + 2 ranks on this 2-core machine
    "rollout.engine=transformers",
    "rollout.max_new_tokens=32",
]


def test_killed_rank_restarts_and_resumes_without_losing_a_step(tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [
        sys.executable,
        "-m",
        "rlcoder",
        "train",
        "--config",
        "configs/laptop_ppo.yaml",
        f"run_dir={run_dir}",
    ]
    stage = RunDir(run_dir).stage("ppo")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd + OVERRIDES, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 600
        while len(stage.read_metrics()) < 2 or stage.last_complete_checkpoint() is None:
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "no two PPO steps within 10 minutes"
            time.sleep(0.5)
        first = json.loads(stage.ranks.read_text().splitlines()[0])
        killed_after = len(stage.read_metrics())
        os.kill(first["pids"][1], signal.SIGKILL)  # rank 1, by the pid rank 0 recorded for it
        assert proc.wait(timeout=900) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    starts = [json.loads(line) for line in stage.ranks.read_text().splitlines()]
    assert len(starts) == 2, starts  # the first attempt and one restart
    assert set(starts[1]["pids"]).isdisjoint(starts[0]["pids"])
    assert "resuming from" in log.read_text()
    steps = [int(r["step"]) for r in stage.read_metrics()]
    assert steps == list(range(1, STEPS + 1)), (steps, killed_after)
    assert stage.recorded_steps() == list(range(1, STEPS + 1))
    assert stage.is_done()
