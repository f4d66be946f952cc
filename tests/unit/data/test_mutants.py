"""Single-edit mutants of reference solutions, and the SFT mixture that adds the failing ones."""

from __future__ import annotations

import ast

from rlcoder.data.mutants import mutants, mutation_sites
from rlcoder.learn.sft import with_mutants
from rlcoder.records import Problem, ScoreItem, Verdict, VerdictStatus

SOURCE = '''def clamp(x, lo, hi):
    """Return x limited to [lo, hi]; "<" in a docstring is not code."""
    if x < lo:  # a comment with max( in it
        return lo
    return min(x, hi) + 0
'''


def test_sites_are_code_tokens_only():
    found = {(SOURCE[a:b], r) for a, b, r in mutation_sites(SOURCE)}
    assert found == {("<", "<="), ("min", "max"), ("+", "-"), ("0", "1")}


def test_each_mutant_is_one_edit_that_still_parses():
    out = mutants(SOURCE, 10, seed="p1")
    assert len(out) == 4 and len(set(out)) == 4 and SOURCE not in out
    for m in out:
        ast.parse(m)
        changed = [(a, b) for a, b in zip(SOURCE.splitlines(), m.splitlines(), strict=True) if a != b]
        assert len(changed) == 1
    assert mutants(SOURCE, 2, seed="p1") == out[:2]  # reproducible from the seed
    assert mutants("def f(:\n", 3, seed="x") == []  # untokenizable source: no mutants


def _problem(pid: str) -> Problem:
    return Problem(pid, f"q {pid}", SOURCE, "from solution import clamp\n")


def test_with_mutants_keeps_only_quickly_failing_ones():
    asked: list[ScoreItem] = []
    statuses = iter([VerdictStatus.PASS, VerdictStatus.TIMEOUT, VerdictStatus.FAIL, VerdictStatus.ERROR] * 2)

    def scorer(items: list[ScoreItem]) -> list[Verdict]:
        asked.extend(items)
        return [Verdict(next(statuses)) for _ in items]

    problems = [_problem("a"), _problem("b")]
    out = with_mutants(problems, 1, scorer=scorer)
    assert len(asked) == 8  # four candidates per requested mutant
    assert [p.problem_id for p in out] == ["a", "a", "b", "b"]
    assert out[0] is problems[0] and out[1].solution != SOURCE
    assert out[1].solution in asked[2].completion  # the first FAIL, not the PASS or the TIMEOUT
    assert with_mutants(problems, 0, scorer=scorer) == problems and len(asked) == 8
