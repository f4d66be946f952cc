"""A finished step: one metrics row every step, a progress line every logging.log_every steps (and the
last) with the stage's ETA; and the SFT logging interval."""

from __future__ import annotations

from rlcoder.config import load_config
from rlcoder.learn.sft import sft_log_interval
from rlcoder.learn.step import RLSetup, StepRecord
from rlcoder.run_dir import RunDir


def _row(step: int) -> dict:
    return {"step": step, "pass_rate": 0.5, "rollout_tokens_per_s": 1.0, "loss": 0.1, "reward": 0.5}


def test_progress_lines_follow_log_every_and_always_show_the_last_step(tmp_path):
    cfg = load_config(None, ["logging.log_every=2", "learner.steps=5"])
    lines: list[str] = []
    stage = RunDir(tmp_path).stage("grpo")
    rl = RLSetup(cfg, stage, None, {}, [], None, None, None, lines.append)
    record = StepRecord()
    for step in range(1, 6):
        record.finish(rl, _row(step), "grpo")
    assert [line.split()[2] for line in lines] == ["2/5", "4/5", "5/5"]
    assert "| eta " in lines[0] and "eta" not in lines[-1]
    assert [r["step"] for r in stage.read_metrics()] == [1, 2, 3, 4, 5]  # every step is recorded


def test_a_resumed_stage_estimates_from_its_own_steps(tmp_path):
    cfg = load_config(None, ["learner.steps=10"])
    lines: list[str] = []
    rl = RLSetup(cfg, RunDir(tmp_path).stage("grpo"), None, {}, [], None, None, None, lines.append)
    record = StepRecord(started_s=0.0)  # as if this process had run for a long time
    record.finish(rl, _row(6), "grpo")  # resumed after 5 steps: 1 step done here, 4 left
    assert record.first_step == 5


def test_sft_logs_about_ten_lines_per_stage_unless_told():
    assert sft_log_interval(load_config(None, []), 320) == 32
    assert sft_log_interval(load_config(None, []), 4) == 1
    assert sft_log_interval(load_config(None, ["logging.sft_log_every=5"]), 320) == 5
