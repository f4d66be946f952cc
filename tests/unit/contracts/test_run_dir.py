"""Run directory bookkeeping: atomic step files, metrics, complete checkpoints and rewinding."""

from __future__ import annotations

import pytest

from rlcoder.records import RecordError, Rollout, ScoredGroup, Verdict, VerdictStatus
from rlcoder.run_dir import RunDir, checkpoint_step


def _group(step: int, pid: str = "p1") -> ScoredGroup:
    r = Rollout(
        f"{step}-{pid}-0", pid, 0, "prompt", [1], [2, 3], [-0.1, -0.2], "text", "stop", step - 1, step
    )
    return ScoredGroup(pid, [r], [Verdict(VerdictStatus.PASS, 1, 1)], [1.0], step=step)


def test_steps_round_trip_and_list(tmp_path):
    stage = RunDir(tmp_path).stage("grpo")
    for step in (1, 2, 3):
        stage.write_step(step, [_group(step), _group(step, "p2")])
    assert stage.recorded_steps() == [1, 2, 3]
    assert stage.read_step(2) == [_group(2), _group(2, "p2")]
    assert not list(stage.steps.glob(".*"))  # no temp files left behind


def test_corrupt_step_line_names_file_and_line(tmp_path):
    stage = RunDir(tmp_path).stage("grpo")
    path = stage.write_step(1, [_group(1)])
    path.write_text(path.read_text() + '{"problem_id": \n')
    with pytest.raises(RecordError, match=r"step_000001.jsonl:2"):
        stage.read_step(1)


def test_only_complete_checkpoints_count(tmp_path):
    stage = RunDir(tmp_path).stage("grpo")
    assert stage.last_complete_checkpoint() is None
    for step in (1, 2, 3):
        (stage.checkpoints / f"checkpoint-{step}").mkdir(parents=True)
    stage.mark_complete(stage.checkpoints / "checkpoint-1")
    stage.mark_complete(stage.checkpoints / "checkpoint-2")
    # checkpoint-3 was being written when the run died (or the disk filled)
    last = stage.last_complete_checkpoint()
    assert last is not None and checkpoint_step(last) == 2


def test_rewind_forgets_everything_after_the_resume_point(tmp_path):
    stage = RunDir(tmp_path).stage("grpo")
    for step in (1, 2, 3):
        stage.write_step(step, [_group(step)])
        stage.append_metrics({"step": step, "loss": 0.1 * step})
        (stage.checkpoints / f"checkpoint-{step}").mkdir(parents=True)
    stage.mark_complete(stage.checkpoints / "checkpoint-1")
    stage.mark_complete(stage.checkpoints / "checkpoint-2")
    with stage.metrics.open("a") as f:
        f.write('{"step": 4, "lo')  # torn by SIGKILL
    stage.rewind_to(2)
    assert stage.recorded_steps() == [1, 2]
    assert [r["step"] for r in stage.read_metrics()] == [1, 2]
    assert sorted(p.name for p in stage.checkpoints.iterdir()) == ["checkpoint-1", "checkpoint-2"]
