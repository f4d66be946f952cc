"""End to end: `rlcoder train` of the multi-turn laptop config through the CLI (GRPO only, from the
tiny model, short answers): episodes of up to two turns reach TRL with an env_mask that covers
exactly the feedback, the records keep every turn, and the evaluation reports the pass rate after
each turn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from rlcoder.run.model_paths import resolve_model_path
from rlcoder.run_dir import RunDir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
OVERRIDES = [
    "stages=[grpo]",
    "data.limit=2",
    "learner.steps=2",
    "learner.prompts_per_step=2",
    "rollout.samples_per_prompt=4",
    "learner.completions_per_device_batch=8",
    "rollout.max_new_tokens=32",
    "eval.samples_per_problem=2",
]


def test_multiturn_grpo_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rlcoder", "train", "--config", "configs/laptop_multiturn.yaml"]
    done = subprocess.run(
        [*cmd, f"run_dir={run_dir}", *OVERRIDES], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]

    grpo = RunDir(run_dir).stage("grpo")
    assert grpo.recorded_steps() == [1, 2]
    rollouts = [r for step in (1, 2) for g in grpo.read_step(step) for r in g.rollouts]
    assert len(rollouts) == 2 * 2 * 4
    two_turn = [r for r in rollouts if len(r.turns) == 2]
    assert two_turn, "the untrained tiny model fails turn 1, so its episodes get a second turn"
    for r in rollouts:
        assert 1 <= len(r.turns) <= 2
        assert len(r.env_mask) == len(r.completion_token_ids) == len(r.completion_logprobs)
        # the policy's tokens are exactly its answers; everything else is feedback
        assert sum(r.env_mask) == sum(t.n_tokens for t in r.turns)
        assert r.completion_text == r.turns[-1].completion_text
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tiny"))
    for r in two_turn:
        feedback_ids = [t for t, m in zip(r.completion_token_ids, r.env_mask, strict=True) if m == 0]
        first_line = r.turns[0].feedback.strip().splitlines()[0]
        assert first_line in tokenizer.decode(feedback_ids)  # the masked tokens are the feedback turn

    after = json.loads((grpo.root / "eval_after.json").read_text())
    assert set(after["pass_rate_by_turn"]) == {"1", "2"}
    assert "pass rate after turn: 1:" in done.stderr
