"""`rlcoder train` of configs/laptop_ppo.yaml through the CLI on the tiny model: a short SFT (so the
rewards carry a signal), 2 PPO steps (policy and critic changed, losses finite, KL logged, every step's
records written, the fleet sampling step N with the weights of N-1 updates), then the run resumed from
its last complete checkpoint for a third step."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rlcoder.records import VerdictStatus, reward_from_verdict
from rlcoder.run_dir import COMPLETE, RunDir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
GROUP = 4
OVERRIDES = [
    "data.limit=2",
    # 2 problems memorized well enough that sampling at temperature 1 mostly, not always, solves them
    "learner.sft.epochs=100",
    "learner.sft.mutants_per_problem=0",  # reference solutions only: a shorter SFT
    "learner.sft.batch_size=2",
    "learner.prompts_per_step=2",
    f"rollout.samples_per_prompt={GROUP}",
    "learner.completions_per_device_batch=4",
    "learner.ppo.completions_per_minibatch=4",
    "learner.ppo.kl_coef=0.05",
    "learner.lr=1e-4",
    "eval.samples_per_problem=2",
]


def _train(run_dir: Path, steps: int) -> str:
    cmd = [sys.executable, "-m", "rlcoder", "train", "--config", "configs/laptop_ppo.yaml"]
    cmd += [f"run_dir={run_dir}", f"learner.steps={steps}", *OVERRIDES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


def test_train_sft_then_two_ppo_steps_then_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ppo = RunDir(run_dir).stage("ppo")
    log = _train(run_dir, steps=2)
    assert "[ppo] step 2/2" in log

    rows = ppo.read_metrics()
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in ("loss", "loss/policy", "loss/value", "entropy", "approx_kl", "kl_ref", "grad_norm"):
            assert math.isfinite(row[key]), key
        for phase in ("rollout", "reward", "update", "sync"):
            assert row[f"time/{phase}_s"] > 0, phase  # every phase ran and was timed
        assert row["ppo/updates"] >= 1
    assert rows[-1]["kl_ref"] != 0  # step 2 samples a policy that moved away from the reference
    for step in (1, 2):
        groups = ppo.read_step(step)
        assert len(groups) == 2
        for g in groups:
            assert len(g.rollouts) == len(g.verdicts) == len(g.rewards) == GROUP
            assert all(v.status is not VerdictStatus.INFRA_ERROR for v in g.verdicts)
            assert g.rewards == [reward_from_verdict(v) for v in g.verdicts]
            assert {r.policy_version for r in g.rollouts} == {step - 1}

    # the policy moved from the SFT weights; the critic from its initial (zero) head
    before, after = (
        load_file(str(run_dir / "sft" / "final" / "model.safetensors")),
        load_file(str(ppo.final / "model.safetensors")),
    )
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before)
    critic = load_file(str(ppo.checkpoints / "checkpoint-2" / "critic.safetensors"))
    assert any(t.abs().sum() > 0 for t in critic.values())
    assert list((ppo.root / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "ppo" and 0.0 <= summary["after"]["pass_rate"] <= 1.0

    # as if killed after checkpoint-2 but before the stage was marked done: resume, one more step
    (ppo.final / COMPLETE).unlink()
    log = _train(run_dir, steps=3)
    assert "[sft] already complete" in log
    assert "[ppo] resuming from" in log and "checkpoint-2" in log
    assert [r["step"] for r in ppo.read_metrics()] == [1, 2, 3]
    assert ppo.recorded_steps() == [1, 2, 3]
    assert {r.policy_version for g in ppo.read_step(3) for r in g.rollouts} == {2}
    assert sorted(p.name for p in ppo.checkpoints.iterdir()) == ["checkpoint-2", "checkpoint-3"]
    resumed = load_file(str(ppo.checkpoints / "checkpoint-3" / "critic.safetensors"))
    assert any(not torch.equal(critic[k], resumed[k]) for k in critic)
