"""KodCode-style labels from pass sequences, pass-rate selection, and the labelled rows' round trip."""

from __future__ import annotations

import json

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.data.labels import labelled, pass_sequence, select_by_pass_rate
from rlcoder.data.problems import bundled_problems, load_problems, problem_to_row, row_to_problem
from rlcoder.records import Problem, Verdict, VerdictStatus
from rlcoder.run.job import select_train
from rlcoder.run_dir import RunDir, written_ids

P, F, INFRA = VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.INFRA_ERROR
PROBLEM = Problem("p", "q", "def f():\n    return 1\n", "from solution import f\n")


def verdicts(*statuses: VerdictStatus) -> list[Verdict]:
    return [Verdict(s) for s in statuses]


@pytest.mark.parametrize(
    ("statuses", "rate", "label"),
    [
        ([P] * 7 + [F] * 3, 0.7, "easy"),  # > 2/3
        ([P] * 2 + [F], 2 / 3, "medium"),  # exactly 2/3 is not easy
        ([P] + [F] * 2, 1 / 3, "medium"),  # exactly 1/3 is not hard
        ([P] * 3 + [F] * 7, 0.3, "hard"),  # < 1/3
        ([F] * 10, 0.0, "hard"),
        ([P] * 10, 1.0, "easy"),
        ([P, P, INFRA, INFRA, F], 2 / 3, "medium"),  # infra errors are no evidence: 2 of 3 scored
    ],
)
def test_labels_follow_kodcode_thresholds(statuses, rate, label):
    out = labelled(PROBLEM, verdicts(*statuses))
    assert out is not None
    assert out.pass_rate == pytest.approx(rate) and out.difficulty == label
    assert out.pass_sequence == [int(s is P) for s in statuses if s is not INFRA]


def test_no_label_without_a_scored_sample():
    assert labelled(PROBLEM, verdicts(INFRA, INFRA)) is None and pass_sequence(verdicts(INFRA)) == []


def test_labelled_rows_round_trip():
    p = labelled(bundled_problems("train")[0], verdicts(P, F, F))
    back = row_to_problem(json.loads(json.dumps(problem_to_row(p))), 0)
    assert (back.pass_rate, back.pass_sequence, back.difficulty) == (
        pytest.approx(1 / 3),
        [1, 0, 0],
        "medium",
    )
    with pytest.raises(ValueError, match="gpt_pass_sequence"):
        row_to_problem({**problem_to_row(p), "gpt_pass_sequence": [1, 2]}, 0)


def _rated(rates: dict[str, float | None]) -> list[Problem]:
    return [Problem(pid, "q", "s", "t", pass_rate=r) for pid, r in rates.items()]


def test_selection_keeps_exactly_the_problems_in_range():
    problems = _rated({"a": 0.0, "b": 0.2, "c": 0.5, "d": 0.8, "e": 1.0, "u": None})
    s = select_by_pass_rate(problems, 0.2, 0.8)
    assert [p.problem_id for p in s.kept] == ["b", "c", "d", "u"]  # bounds are inclusive
    assert (s.below, s.above, s.unlabelled_kept) == (["a"], ["e"], ["u"])
    dropped = select_by_pass_rate(problems, 0.2, None, unlabelled="drop")
    assert [p.problem_id for p in dropped.kept] == ["b", "c", "d", "e"] and dropped.unlabelled_dropped == [
        "u"
    ]
    assert select_by_pass_rate(problems).counts()["kept"] == 6


def test_the_rl_stage_selects_by_pass_rate_and_records_it(tmp_path):
    rows = [
        problem_to_row(labelled(p, verdicts(*s)))
        for p, s in zip(bundled_problems("train")[:3], [[P], [F], [P, F]], strict=True)
    ]
    src = tmp_path / "labelled.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, [f"data.train_source={src}", "data.min_pass_rate=0.1", "data.max_pass_rate=0.9"])
    stage = RunDir(tmp_path / "run").stage("grpo")
    lines: list[str] = []
    kept = select_train(cfg, stage, lines.append)
    assert [p.problem_id for p in kept] == [rows[2]["question_id"]]
    record = json.loads(stage.selection_file.read_text())
    assert (
        record["kept"] == 1
        and record["below"] == [rows[1]["question_id"]]
        and record["above"] == [rows[0]["question_id"]]
    )
    assert "dropped_below_min 1" in lines[0]
    none = load_config(
        None, [f"data.train_source={src}", "data.min_pass_rate=0.95", "data.max_pass_rate=0.97"]
    )
    with pytest.raises(ConfigError, match="no problem"):
        select_train(none, stage, lines.append)
    assert (
        len(load_problems(str(src)))
        == 3
        == len(select_train(load_config(None, [f"data.train_source={src}"]), stage, print))
    )


def test_an_interrupted_label_file_is_continued_not_overwritten(tmp_path):
    out = tmp_path / "l.jsonl"
    assert written_ids(out) == set()
    row = json.dumps(problem_to_row(labelled(PROBLEM, verdicts(P))))
    out.write_text(row + "\n" + row[:20])  # a kill mid-write
    assert written_ids(out) == {"p"} and out.read_text() == row + "\n"
    out.write_text("not json\n")
    with pytest.raises(ConfigError, match=r"l\.jsonl:1"):
        written_ids(out)
