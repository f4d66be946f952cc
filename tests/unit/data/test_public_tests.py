"""The public/hidden test split and the feedback message built from a public-test verdict."""

from __future__ import annotations

import ast
import json

import pytest

from rlcoder.data.problems import bundled_problems
from rlcoder.data.public_tests import has_hidden_tests, public_test_source, with_public_tests
from rlcoder.data.verification import completion_item
from rlcoder.env.feedback import ASK, format_feedback, needs_feedback
from rlcoder.records import FunctionInfo, Problem, TestKind, Verdict, VerdictStatus

PYTEST = """import pytest
from solution import f

TABLE = [(1, 2), (2, 3)]


@pytest.fixture
def big():
    return 10


def helper(x):
    return f(x)


@pytest.mark.parametrize("x, y", TABLE)
def test_table(x, y):
    assert f(x) == y

# a hidden test: the answer for 41 is 42
def test_hidden_big(big):
    assert helper(41) == 42


class TestHiddenClass:
    def test_m(self):
        assert f(-1) == 0
"""

CHECK = """METADATA = {"author": "x"}


def check(candidate):
    # Check some simple cases
    assert True, "This prints if this assert fails 1 (good for debugging!)"
    assert candidate(1) == 2
    xs = [3, 4]
    for x in xs:
        assert candidate(x) == x + 1
    assert candidate(100) == 101, "hidden-message"
"""


def names(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def test_pytest_split_keeps_the_first_tests_and_every_helper() -> None:
    public = public_test_source(PYTEST, TestKind.PYTEST, 1)
    assert names(public) == ["big", "helper", "test_table"]
    assert "TABLE = [(1, 2), (2, 3)]" in public and "import pytest" in public
    assert "41" not in public and "42" not in public  # the comment above the hidden test went too
    assert names(public_test_source(PYTEST, TestKind.PYTEST, 2)) == [
        "big",
        "helper",
        "test_table",
        "test_hidden_big",
    ]
    compile(public, "public", "exec")


def test_at_least_one_test_stays_hidden_unless_there_is_only_one() -> None:
    everything_but_last = public_test_source(PYTEST, TestKind.PYTEST, 10)
    assert "TestHiddenClass" not in everything_but_last and "test_hidden_big" in everything_but_last
    single = "from solution import f\n\ndef test_only():\n    assert f(1) == 2\n"
    assert public_test_source(single, TestKind.PYTEST, 1) == single
    with pytest.raises(ValueError):
        public_test_source(PYTEST, TestKind.PYTEST, 0)


def test_check_split_cuts_after_the_nth_real_assert() -> None:
    public = public_test_source(CHECK, TestKind.CHECK, 1)
    assert "candidate(1) == 2" in public and "METADATA" in public
    assert "x + 1" not in public and "100" not in public
    two = public_test_source(CHECK, TestKind.CHECK, 2)
    assert "x + 1" in two and "hidden-message" not in two
    ns: dict = {}
    exec(compile(two, "public", "exec"), ns)
    ns["check"](lambda x: x + 1)  # still a working check


def test_stdio_split_keeps_the_first_cases() -> None:
    cases = [{"input": f"{i}\n", "output": f"{2 * i}\n"} for i in range(3)]
    public = json.loads(public_test_source(json.dumps(cases), TestKind.STDIO, 5))
    assert public == cases[:2]


def test_every_bundled_problem_with_two_or_more_tests_gets_hidden_ones() -> None:
    problems = [with_public_tests(p, 1) for p in bundled_problems()]
    for p in problems:
        compile(p.public_test, p.problem_id, "exec")
        n_tests = sum(1 for n in names(p.test) if n.startswith(("test", "Test")))
        assert has_hidden_tests(p) == (n_tests >= 2), p.problem_id
    assert sum(has_hidden_tests(p) for p in problems) >= len(problems) - 8
    # a problem that brings its own public tests keeps them
    own = with_public_tests(Problem("x", "q", "s", PYTEST, public_test="mine"), 1)
    assert own.public_test == "mine"


def test_public_score_item_uses_only_the_public_tests() -> None:
    p = with_public_tests(Problem("x", "q", "s", PYTEST, [FunctionInfo("f")]), 1)
    assert completion_item(p, "c", public=True).test == p.public_test
    assert completion_item(p, "c").test == PYTEST
    with pytest.raises(ValueError, match="no public tests"):
        completion_item(Problem("y", "q", "s", PYTEST), "c", public=True)


# ---------------------------------------------------------------------------------------------
# Feedback


def fail(detail: str, tail: str = "", passed: int = 0, total: int = 2) -> Verdict:
    return Verdict(VerdictStatus.FAIL, passed, total, detail=detail, output_tail=tail or detail)


def test_feedback_shows_the_failing_public_test_and_the_actual_value() -> None:
    public = public_test_source(PYTEST, TestKind.PYTEST, 1)
    v = fail("test_table[0]: AssertionError: assert 5 == 2 (test line 19)", passed=1)
    text = format_feedback(v, public, TestKind.PYTEST, 1200)
    assert "failed the tests (1 of 2 tests passed)" in text
    assert "def test_table(x, y):\n    assert f(x) == y" in text
    assert "assert 5 == 2" in text
    assert text.endswith(ASK)


def test_feedback_for_check_and_stdio_points_at_the_failing_case() -> None:
    public = public_test_source(CHECK, TestKind.CHECK, 1)
    v = fail("check: AssertionError: assert 7 == 2 (test line 7)", total=1)
    assert "Failing check: `assert candidate(1) == 2`" in format_feedback(v, public, TestKind.CHECK, 1200)
    cases = json.dumps([{"input": "3 4\n", "output": "7\n"}, {"input": "1 1\n", "output": "2\n"}])
    v = fail("case 1: expected '2\\n', got '0\\n'", passed=1)
    text = format_feedback(v, cases, TestKind.STDIO, 1200)
    assert "1 1" in text and "3 4" not in text and "got '0\\n'" in text


@pytest.mark.parametrize("limit", [200, 400, 1200])
def test_feedback_is_truncated_to_the_limit_and_keeps_the_request(limit: int) -> None:
    long_test = "from solution import f\n\ndef test_long():\n" + "    assert f(1) == 1\n" * 300
    output = "\n".join(f"line {i} of a long traceback" for i in range(500))
    v = fail("test_long: AssertionError: assert 0 == 1 (test line 4)", tail=output)
    text = format_feedback(v, long_test, TestKind.PYTEST, limit)
    assert len(text) <= limit
    assert text.endswith(ASK) and "assert 0 == 1" in text
    if limit >= 1200:
        assert "line 499 of a long traceback" in text  # the tail of the output, not its head


def test_statuses_without_a_test_name_still_explain_themselves() -> None:
    t = Verdict(VerdictStatus.TIMEOUT, detail="wall-clock limit hit after 10000 ms")
    assert "time limit" in format_feedback(t, PYTEST, TestKind.PYTEST, 400)
    e = Verdict(VerdictStatus.ERROR, detail="SyntaxError: invalid syntax (solution.py, line 1) (test line 1)")
    assert "SyntaxError" in format_feedback(e, PYTEST, TestKind.PYTEST, 400)
    assert not needs_feedback(Verdict(VerdictStatus.PASS, 2, 2))
    assert not needs_feedback(Verdict(VerdictStatus.INFRA_ERROR, detail="sandbox down"))
    assert needs_feedback(Verdict(VerdictStatus.NO_CODE))
    with pytest.raises(ValueError, match="feedback_max_chars"):
        format_feedback(t, PYTEST, TestKind.PYTEST, 50)
