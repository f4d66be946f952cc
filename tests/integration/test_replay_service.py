"""`rlcoder replay` through a real reward service on 127.0.0.1: a fixture run (reference solutions and
deliberately broken completions, scored for real) replays to exactly its recorded verdicts; a planted
reward change (recorded verdicts of an "old reward" that passed wrong answers) shows up in the diff
with the right counts and fails the CI guard; a corrupt line is counted and skipped."""

from __future__ import annotations

import json
import shutil

import pytest

from reward.service.client import RewardClient
from reward.service.launch import RewardService
from rlcoder.cli.main import main
from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.eval.replay import verdict_signature
from rlcoder.eval.stored_runs import ReadLog, read_stored
from rlcoder.eval.synthetic_run import score_groups, synthetic_groups, write_run
from rlcoder.records import ScoredGroup, VerdictStatus, from_json, to_json

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service():
    with RewardService(workers=2) as svc:
        yield svc


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory, service):
    """6 bundled train problems x 2 steps x (reference, wrong answer, syntax error, prose)."""
    root = tmp_path_factory.mktemp("replay") / "run"
    problems = {p.problem_id: p for p in bundled_problems("train")[::21][:6]}
    cfg = load_config(None, [f"run_dir={root}", "data.train_source=bundled:train", "reward.workers=2"])
    groups = synthetic_groups(list(problems.values()), steps=2, unique=True)
    with RewardClient(service.url) as client:
        score_groups(groups, problems, client.score_sync, cfg)
    statuses = {v.status for g in groups for v in g.verdicts}
    assert {VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.ERROR, VerdictStatus.NO_CODE} <= statuses
    return write_run(root, cfg, groups)


def _signatures(path):
    return {
        r.rollout_id: verdict_signature(v)
        for s in read_stored(path, ReadLog())
        for r, v in zip(s.group.rollouts, s.group.verdicts, strict=True)
    }


def test_replay_reproduces_recorded_verdicts_exactly(fixture_run, service, capsys):
    # no --reward-url: replay starts its own service on 127.0.0.1, as the run's config says
    assert main(["replay", str(fixture_run), "--fail-on-change", "--k", "1,2,4"]) == 0
    out = capsys.readouterr().out
    assert "diff against the recorded verdicts: 0 of 48 changed" in out
    replay = fixture_run / "run.replay.jsonl"
    assert _signatures(replay) == _signatures(fixture_run)
    diff = json.loads((fixture_run / "run.replay.diff.json").read_text())
    assert diff["compared"] == 48 and diff["changed"] == 0 and diff["read"]["corrupt_lines"] == 0
    assert "<svg" in (fixture_run / "run.replay.report.html").read_text()
    assert "pass@4" in out

    # resuming a finished replay continues the same file and scores nothing again
    before = replay.read_text()
    assert main(["replay", str(fixture_run), "--resume", "--reward-url", service.url]) == 0
    assert "replayed 0 completions" in capsys.readouterr().out
    assert replay.read_text() == before and not (fixture_run / "run.replay-2.jsonl").exists()


def test_planted_reward_change_and_corrupt_line(fixture_run, tmp_path, service, capsys):
    run = tmp_path / "run"
    shutil.copytree(fixture_run, run, ignore=shutil.ignore_patterns("run.replay*"))
    step1 = run / "grpo/steps/step_000001.jsonl"
    lines = step1.read_text().splitlines()
    planted = {}
    for i in (0, 2, 4):  # an "old reward" that passed the wrong answer of three problems
        g = from_json(ScoredGroup, lines[i])
        wrong = 1  # synthetic_run.KINDS: reference, wrong, syntax, prose
        assert g.verdicts[wrong].status is VerdictStatus.FAIL
        g.verdicts[wrong].status = VerdictStatus.PASS
        g.verdicts[wrong].passed = g.verdicts[wrong].total
        planted[g.problem_id] = g.rollouts[wrong].rollout_id
        lines[i] = to_json(g)
    lines.insert(3, '{"problem_id": "torn", "rollouts": [')
    step1.write_text("\n".join(lines) + "\n")

    code = main(["replay", str(run), "--reward-url", service.url, "--fail-on-change", "--examples", "5"])
    assert code == 1
    captured = capsys.readouterr()
    assert f"{step1}:4: skipped: not JSON" in captured.err
    assert "3 of 48 changed" in captured.out  # the corrupt line was an extra one: every group still compared
    diff = json.loads((run / "run.replay.diff.json").read_text())
    assert diff["read"]["corrupt_lines"] == 1
    assert diff["compared"] == 48 and diff["changed"] == 3
    assert diff["transitions"] == {"pass -> fail": 3}
    assert {pid for pid, t in diff["per_problem"].items() if t["changed"]} == set(planted)
    assert {e["rollout_id"] for e in diff["examples"]["pass -> fail"]} == set(planted.values())
    assert sum(t["changed"] for t in diff["per_difficulty"].values()) == 3
