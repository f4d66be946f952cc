"""Verdicts that say nothing about the code (infra_error, bad_test) are left out of every pass rate and
every reward, counted apart, and get no feedback turn: one rule (records.UNSCORED) everywhere."""

from __future__ import annotations

import math

from rlcoder.env.feedback import needs_feedback
from rlcoder.eval.pass_at_k import PassCounts
from rlcoder.eval.report import summarize
from rlcoder.learn.step import StepRecord
from rlcoder.records import UNSCORED, Rollout, ScoredGroup, Verdict, VerdictStatus, reward_from_verdict

S = VerdictStatus
STATUSES = [S.PASS, S.FAIL, S.INFRA_ERROR, S.BAD_TEST]


def _group() -> ScoredGroup:
    rollouts = [Rollout(f"1-p-{i}", "p", i, "x", [1], [2], [0.0], "c", "stop", 0, 1) for i in range(4)]
    verdicts = [Verdict(s) for s in STATUSES]
    return ScoredGroup("p", rollouts, verdicts, [reward_from_verdict(v) for v in verdicts], step=1)


def test_unscored_verdicts_are_left_out_and_counted_apart():
    g = _group()
    assert g.rewards == [1.0, 0.0, None, None] and {S.INFRA_ERROR, S.BAD_TEST} == UNSCORED
    counts = PassCounts.from_groups([g])
    assert counts.pass_rate == 0.5 and (counts.infra_errors, counts.bad_tests) == (1, 1)
    assert summarize([g], {}, [1]).overall.value == 0.5
    record = StepRecord(rollouts=g.rollouts, verdicts=g.verdicts, rewards=g.rewards)
    row = record.summary()
    assert row["pass_rate"] == 0.5 and row["dropped/bad_test"] == 1 and row["dropped/infra_error"] == 1
    assert math.isnan(StepRecord(verdicts=[Verdict(S.BAD_TEST)]).summary()["pass_rate"])  # nothing scored
    assert [needs_feedback(v) for v in g.verdicts] == [False, True, False, False]
