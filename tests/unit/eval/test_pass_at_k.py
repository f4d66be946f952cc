"""pass@k against hand-computed values, and the summary's counting."""

from __future__ import annotations

import math

import pytest

from rlcoder.eval.pass_at_k import PassCounts, pass_at_k
from rlcoder.records import ScoredGroup, Verdict, VerdictStatus


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 1, 0.25),  # c/n
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)),
        (4, 3, 2, 1.0),  # n - c < k: every pair holds a correct one
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_impossible_inputs():
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def _group(pid: str, statuses: list[VerdictStatus]) -> ScoredGroup:
    return ScoredGroup(pid, [], [Verdict(s) for s in statuses], [])


def test_summary_counts_and_excludes_infra_errors():
    S = VerdictStatus
    summary = PassCounts.from_groups(
        [
            _group("a", [S.PASS, S.FAIL, S.INFRA_ERROR, S.PASS]),
            _group("b", [S.FAIL, S.TIMEOUT, S.NO_CODE, S.ERROR]),
        ]
    )
    assert summary.infra_errors == 1
    assert summary.samples == {"a": 3, "b": 4}
    assert summary.pass_rate == pytest.approx(2 / 7)
    assert summary.solved() == 1
    assert summary.pass_at(1) == pytest.approx((2 / 3 + 0) / 2)
    assert summary.pass_at(2) == pytest.approx((1.0 + 0) / 2)  # a: 1 - C(1,2)/C(3,2) = 1
