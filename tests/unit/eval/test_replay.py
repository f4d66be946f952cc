"""Replay without a sandbox: reading stored rollouts (corrupt lines counted and skipped), re-scoring
with a stand-in scorer into a replay file beside the input (resumable, never overwriting), and the
diff against the recorded verdicts with a planted reward change."""

from __future__ import annotations

import json

import pytest

from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.eval.replay import (
    diff_groups,
    done_keys,
    existing_replays,
    format_diff,
    next_replay_path,
    pair_with_replay,
    replay_groups,
)
from rlcoder.eval.stored_runs import ReadLog, read_stored
from rlcoder.eval.synthetic_run import score_groups, synthetic_groups, write_run
from rlcoder.records import ScoreItem, Verdict, VerdictStatus, to_json

S = VerdictStatus


def fake_score(items: list[ScoreItem]) -> list[Verdict]:
    """Verdicts from the completion text alone, the way the synthetic kinds are built."""
    out = []
    for it in items:
        if "```" not in it.completion:
            out.append(Verdict(S.NO_CODE, item_id=it.item_id))
        elif "def broken(:" in it.completion:
            out.append(Verdict(S.ERROR, item_id=it.item_id))
        elif "return None" in it.completion:
            out.append(Verdict(S.FAIL, 0, 3, item_id=it.item_id))
        else:
            out.append(Verdict(S.PASS, 3, 3, item_id=it.item_id))
    return out


@pytest.fixture(scope="module")
def problems():
    return {p.problem_id: p for p in bundled_problems("train")[::21][:6]}


@pytest.fixture
def run(tmp_path, problems):
    cfg = load_config(None, [f"run_dir={tmp_path / 'run'}"])
    groups = synthetic_groups(list(problems.values()), steps=2)
    score_groups(groups, problems, fake_score, cfg)
    return write_run(tmp_path / "run", cfg, groups), cfg


def test_reads_a_run_dir_in_step_order(run):
    root, _ = run
    log = ReadLog()
    stored = list(read_stored(root, log))
    assert len(stored) == 12 and not log.bad
    assert [s.group.step for s in stored] == [1] * 6 + [2] * 6
    assert stored[0].where.endswith("step_000001.jsonl:1")


def test_corrupt_and_truncated_lines_are_counted_with_line_numbers(tmp_path, run):
    root, _ = run
    good = (root / "grpo/steps/step_000001.jsonl").read_text().splitlines()
    lines = [good[0], "{not json", good[1], '["a list"]', '{"problem_id": "x", "rollouts": "nope"}', good[2]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n" + good[3][:50])  # the last line torn mid-write
    log = ReadLog()
    stored = list(read_stored(path, log))
    assert [s.group.problem_id for s in stored] == [json.loads(g)["problem_id"] for g in good[:3]]
    assert [b.where for b in log.bad] == [f"{path}:{n}" for n in (2, 4, 5, 7)]
    assert "not JSON" in log.bad[0].reason
    assert "truncated" in log.bad[-1].reason
    assert "expected a JSON object" in log.bad[1].reason
    assert "rollouts" in log.bad[2].reason


def test_flat_completion_rows_group_by_problem_and_step(tmp_path):
    rows = [
        {"problem_id": "a", "completion": "x", "status": "pass", "passed": 1, "total": 1},
        {"problem_id": "a", "completion": "y", "status": "fail"},
        {"problem_id": "b", "completion": "z", "status": "pass"},
        {"question_id": "b", "completion": "w", "step": 2},
        {"completion": "no id"},
    ]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = ReadLog()
    stored = list(read_stored(path, log))
    assert [(s.group.problem_id, s.group.step, len(s.group.rollouts)) for s in stored] == [
        ("a", 0, 2),
        ("b", 0, 1),
        ("b", 2, 1),
    ]
    assert [v.status for v in stored[0].group.verdicts] == [S.PASS, S.FAIL]
    assert stored[2].group.verdicts == []  # no recorded verdict: scored, not compared
    assert len(log.bad) == 1 and log.bad[0].where.endswith(":5") and "problem_id" in log.bad[0].reason
    assert stored[0].key == "completions:1|completions:2"


def test_parquet_completions(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"task_id": "t", "completion": "x", "status": "pass"}] * 3), path)
    stored = list(read_stored(path, ReadLog()))
    assert len(stored) == 1 and len(stored[0].group.rollouts) == 3
    assert stored[0].where == f"{path}:row 0"


def test_replay_reproduces_and_never_overwrites(run, problems):
    root, cfg = run
    out = next_replay_path(root)
    assert out == root / "run.replay.jsonl"
    stats = replay_groups(read_stored(root, ReadLog()), problems, fake_score, cfg, out, chunk_completions=10)
    assert (stats.groups, stats.completions) == (12, 48)
    d = diff_groups(pair_with_replay(read_stored(root, ReadLog()), out), problems)
    assert (d.compared, d.changed, d.not_replayed) == (48, 0, 0)
    assert next_replay_path(root) == root / "run.replay-2.jsonl"
    assert existing_replays(root) == [out]


def test_planted_reward_change_shows_in_the_diff(run, problems):
    root, cfg = run
    hard = {pid for pid, p in problems.items() if p.difficulty == "hard"}
    assert hard and len(hard) < len(problems)

    def stricter(items):  # the "new reward version": reference answers to hard problems now fail
        out = fake_score(items)
        return [
            Verdict(S.FAIL, 2, 3, item_id=v.item_id)
            if v.status is S.PASS and it.item_id.split("-", 1)[1].rsplit("-", 1)[0] in hard
            else v
            for it, v in zip(items, out, strict=True)
        ]

    out = next_replay_path(root)
    replay_groups(read_stored(root, ReadLog()), problems, stricter, cfg, out)
    d = diff_groups(pair_with_replay(read_stored(root, ReadLog()), out), problems, max_examples=2)
    assert d.compared == 48
    assert d.changed == 2 * len(hard)  # one reference sample per hard problem per step
    assert dict(d.transitions) == {"pass -> fail": 2 * len(hard)}
    assert {pid for pid, t in d.per_problem.items() if t.changed} == hard
    assert all(d.per_problem[pid].changed == 2 for pid in hard)
    assert d.per_difficulty["hard"].changed == 2 * len(hard)
    assert sum(t.changed for k, t in d.per_difficulty.items() if k != "hard") == 0
    assert len(d.examples["pass -> fail"]) == 2
    assert d.examples["pass -> fail"][0].old == "pass 3/3" and d.examples["pass -> fail"][0].new == "fail 2/3"
    text = format_diff(d)
    assert f"{2 * len(hard)} of 48 changed" in text and "pass -> fail" in text


def test_a_killed_replay_resumes_without_loss_or_repeat(run, problems):
    root, cfg = run
    out = next_replay_path(root)
    calls = []

    def dies_on_third_chunk(items):
        calls.append(len(items))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_score(items)

    with pytest.raises(KeyboardInterrupt):
        replay_groups(
            read_stored(root, ReadLog()), problems, dies_on_third_chunk, cfg, out, chunk_completions=8
        )
    with out.open("a") as f:
        f.write('{"problem_id": "torn')  # a kill mid-write
    done = done_keys(out)
    assert len(done) == 4  # two chunks of two groups
    assert out.read_text().endswith("\n")
    stats = replay_groups(read_stored(root, ReadLog()), problems, fake_score, cfg, out, skip=done)
    assert (stats.groups, stats.resumed_groups) == (8, 4)
    keys = [s.key for s in read_stored(out, ReadLog())]
    assert len(keys) == len(set(keys)) == 12


def test_missing_problems_are_counted_not_scored(run, problems):
    root, cfg = run
    known = dict(list(problems.items())[:4])
    out = next_replay_path(root)
    stats = replay_groups(read_stored(root, ReadLog()), known, fake_score, cfg, out)
    assert stats.completions == 4 * 2 * 4
    assert set(stats.missing) == set(problems) - set(known)
    assert all(n == 8 for n in stats.missing.values())
    d = diff_groups(pair_with_replay(read_stored(root, ReadLog()), out), problems)
    assert (d.compared, d.not_replayed) == (32, 16)


def test_unrecorded_verdicts_are_scored_not_compared(tmp_path, problems, run):
    _, cfg = run
    pid = next(iter(problems))
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"problem_id": pid, "completion": "no code here"}) + "\n")
    out = next_replay_path(path)
    assert out == tmp_path / "c.replay.jsonl"
    replay_groups(read_stored(path, ReadLog()), problems, fake_score, cfg, out)
    d = diff_groups(pair_with_replay(read_stored(path, ReadLog()), out), problems)
    assert (d.compared, d.unrecorded) == (0, 1)
    (replayed,) = read_stored(out, ReadLog())
    assert replayed.group.verdicts[0].status is S.NO_CODE
    assert to_json(replayed.group)  # the replay file is itself a replayable input
