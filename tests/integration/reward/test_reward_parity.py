"""Verdict parity: every (solution, test file) pair gets the same status and the same passed/total
counts from the service's harness as from a real `python -m pytest` run on the same code."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from reward.executor import Executor
from reward.extract import extract_code
from reward.testing import baseline, parity_pairs
from rlcoder.records import ScoreItem

pytestmark = pytest.mark.integration

PAIRS = parity_pairs.pairs()


@pytest.fixture(scope="module")
def real_pytest():
    with ThreadPoolExecutor(2) as pool:
        results = pool.map(lambda p: baseline.run_pytest(extract_code(p.code) or "", p.test), PAIRS)
        return {p.name: r for p, r in zip(PAIRS, results, strict=True)}


@pytest.fixture(scope="module", params=["isolated", "in_process"])
def ours(request):
    with Executor(workers=2, judge=request.param) as ex:
        verdicts = ex.score([ScoreItem(completion=p.code, test=p.test, item_id=p.name) for p in PAIRS])
        counters = ex.ping().get("counters", {})
    return {v.item_id: v for v in verdicts}, counters, request.param


def test_the_set_covers_pass_fail_error_and_the_fallback(real_pytest, ours):
    statuses = {r.status for r in real_pytest.values()}
    assert {"pass", "fail", "error"} <= statuses
    assert ours[1].get("mode_iso_fast", 0) + ours[1].get("mode_fast", 0) >= len(PAIRS) - 6
    if ours[2] == "isolated":  # all but the tests that patch process-wide state (monkeypatch) cross
        assert ours[1].get("mode_iso_fast", 0) >= len(PAIRS) - 6 - 2
    real = "mode_iso_pytest" if ours[2] == "isolated" else "mode_pytest"  # in the judge, or in-process
    assert ours[1].get(real, 0) == 6  # xfail, parametrized-fixture and unittest files take real pytest
    judges = {v.judge for v in ours[0].values()}
    assert judges == ({"isolated", "in_process"} if ours[2] == "isolated" else {"in_process", "pytest"})


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_same_verdict_as_real_pytest(real_pytest, ours, pair):
    expected = real_pytest[pair.name]
    got = ours[0][pair.name]
    assert (got.status.value, got.passed, got.total) == (expected.status, expected.passed, expected.total), (
        got.detail
    )
