"""The SFT mixture's mutants, checked in the real sandbox: each bundled problem gets one, and it
fails the problem's tests while the reference solution passes."""

from __future__ import annotations

import pytest

from reward import score
from rlcoder.data.problems import load_problems
from rlcoder.data.verification import reference_item
from rlcoder.learn.sft import with_mutants
from rlcoder.records import VerdictStatus

pytestmark = pytest.mark.integration


def test_bundled_problems_get_one_failing_mutant_each():
    problems = load_problems("bundled:train", limit=6)
    mixed = with_mutants(problems, 1)
    assert [p.problem_id for p in mixed] == [p.problem_id for p in problems for _ in range(2)]
    verdicts = score([reference_item(p) for p in mixed])
    statuses = [v.status for v in verdicts]
    assert statuses[0::2] == [VerdictStatus.PASS] * len(problems)
    assert all(s in (VerdictStatus.FAIL, VerdictStatus.ERROR) for s in statuses[1::2]), statuses
