"""Outputs are never overwritten silently (export, data dedup, tiny-model, eval: refused unless --force,
before any work), replaying one step file leaves steps/ alone, and --fail-on-change fails when part of
the input was never compared. The CLI in a subprocess; scoring in the in-process sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.eval.synthetic_run import score_groups, write_run
from rlcoder.records import Rollout, ScoredGroup
from tests.helpers.cli import rlcoder_cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


def _rlcoder(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return rlcoder_cli(*args, timeout=timeout)


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two steps of 4 problems x 2 samples (the reference solution, and code that fails), scored by the
    real sandbox, so a replay reproduces every verdict."""
    from reward import score

    root = tmp_path_factory.mktemp("scored") / "run"
    problems = {p.problem_id: p for p in bundled_problems("train")[::21][:4]}
    cfg = load_config(None, [f"run_dir={root}", "data.train_source=bundled:train", "reward.workers=1"])
    groups = []
    for step in (1, 2):
        for p in problems.values():
            texts = [f"```python\n{p.solution}\n```", "```python\nx = 1\n```"]
            rollouts = [
                Rollout(f"{step}-{p.problem_id}-{i}", p.problem_id, i, "", [], [], [], t, "stop", 0, step)
                for i, t in enumerate(texts)
            ]
            groups.append(ScoredGroup(p.problem_id, rollouts, [], [], step=step))
    score_groups(groups, problems, lambda items: score(items, workers=1), cfg)
    return write_run(root, cfg, groups)


def _refused(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_export_refuses_an_existing_out_unless_forced(scored_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    out.write_text("mine\n")
    _refused(_rlcoder("export", str(scored_run), "--out", str(out)), f"--out {out}: the file exists")
    assert out.read_text() == "mine\n"
    proc = _rlcoder("export", str(scored_run), "--out", str(out), "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text() != "mine\n"


def test_dedup_and_tiny_model_refuse_existing_outputs(tmp_path: Path) -> None:
    out = tmp_path / "kept.jsonl"
    out.write_text("mine\n")
    _refused(_rlcoder("data", "dedup", "--no-decontaminate", "--out", str(out)), "the file exists")
    assert out.read_text() == "mine\n"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    _refused(_rlcoder("tiny-model", "--out", str(folder)), f"--out {folder}: the folder exists")
    assert (folder / "config.json").read_text() == "{}"


def test_eval_refuses_to_replace_an_earlier_eval(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    out.mkdir()
    (out / "eval_summary.json").write_text("{}")
    proc = _rlcoder("eval", "--out", str(out), "--n", "2", f"run_dir={tmp_path}")
    _refused(proc, "eval_summary.json: the file exists; pass --force")
    assert (out / "eval_summary.json").read_text() == "{}"


def test_replaying_one_step_file_leaves_steps_alone(scored_run: Path) -> None:
    steps = scored_run / "grpo" / "steps"
    before = sorted(p.name for p in steps.iterdir())
    proc = _rlcoder("replay", str(steps / "step_000001.jsonl"), "reward.workers=1", "--in-process")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 of 8 changed" in proc.stdout
    assert sorted(p.name for p in steps.iterdir()) == before
    assert (scored_run / "grpo" / "replays" / "step_000001.replay.jsonl").is_file()
    report = _rlcoder("report", str(scored_run), "--k", "1,2")
    assert report.returncode == 0, report.stderr[-3000:]
    assert "16 completions in 8 groups" in report.stdout  # the replay is not counted as a third step


def test_fail_on_change_fails_when_a_truncated_line_was_never_compared(
    scored_run: Path, tmp_path: Path
) -> None:
    lines = (scored_run / "grpo" / "steps" / "step_000002.jsonl").read_text().splitlines()
    whole, torn = tmp_path / "whole.jsonl", tmp_path / "torn.jsonl"
    whole.write_text("\n".join(lines) + "\n")
    torn.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:60])
    args = ["reward.workers=1", "--in-process", "--fail-on-change", "--problems", "bundled:train"]
    same = _rlcoder("replay", str(whole), *args)
    assert same.returncode == 0, same.stderr[-3000:]  # nothing changed, everything compared
    proc = _rlcoder("replay", str(torn), *args)
    assert "0 of 6 changed" in proc.stdout
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "not everything was compared (1 corrupt line(s) skipped" in proc.stderr
