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


def test_steps_are_step_files_only(tmp_path):
    from rlcoder.run_dir import replay_folder, step_files

    stage = RunDir(tmp_path).stage("grpo")
    path = stage.write_step(1, [_group(1)])
    (stage.steps / "step_000001.replay.jsonl").write_text("")  # what an old replay left in steps/
    assert stage.recorded_steps() == [1]
    assert step_files(stage.steps) == [path]
    assert replay_folder(path) == stage.root / "replays"
    assert replay_folder(tmp_path / "samples.jsonl") == tmp_path


def test_eval_dirs_differ_per_model_and_problem_set(tmp_path):
    from rlcoder.run_dir import eval_dir

    dirs = {
        eval_dir(tmp_path, model, problems)
        for model in ("tiny", "runs/a/sft/final", "runs/a/grpo/final", "Qwen/Qwen3-8B", "/x" * 40)
        for problems in ("bundled:eval", "humaneval")
    }
    assert len(dirs) == 10
    assert eval_dir(tmp_path, "Qwen/Qwen3-8B", "bundled:eval") == tmp_path / "eval/Qwen_Qwen3-8B/bundled_eval"


def test_existing_outputs_are_refused_unless_forced(tmp_path):
    from rlcoder.config import ConfigError
    from rlcoder.run_dir import refuse_existing

    refuse_existing(tmp_path / "new.jsonl", force=False)
    (tmp_path / "empty").mkdir()
    refuse_existing(tmp_path / "empty", force=False)  # an empty folder holds nothing to lose
    (tmp_path / "old.jsonl").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*old\.jsonl: the file exists; pass --force"):
        refuse_existing(tmp_path / "old.jsonl", force=False)
    refuse_existing(tmp_path / "old.jsonl", force=True)


def test_config_changes_against_the_resolved_config(tmp_path):
    from rlcoder.config import load_config
    from rlcoder.run_dir import RESOLVED_CONFIG, config_changes, write_resolved

    cfg = load_config(None, [f"run_dir={tmp_path}"])
    assert config_changes(cfg) == []
    write_resolved(cfg)
    assert config_changes(cfg) == []
    # a run written by an older schema (a key since removed) still compares, as plain YAML
    (tmp_path / RESOLVED_CONFIG).write_text(
        (tmp_path / RESOLVED_CONFIG).read_text().replace("data:\n", "data:\n  shuffle_seed: 0\n")
    )
    other = load_config(None, [f"run_dir={tmp_path}", "seed=3"])
    assert config_changes(other) == ["data.shuffle_seed: 0 -> (unset)", "seed: 0 -> 3"]
