"""What the isolated judge serves across the boundary: classes and instances as handles, isinstance,
generators, exceptions of the program's own classes, callbacks, arguments mutated in place, printed
output to capsys, files in tmp_path, module constants, HumanEval checks with prompt helpers; and the
fallbacks to the in-process harness where it cannot serve the test."""

# ruff: noqa: E501  (program and test text inline)

from __future__ import annotations

import pytest

from reward.executor import Executor
from rlcoder.records import ScoreItem, TestKind, VerdictStatus

pytestmark = pytest.mark.integration

PROGRAM = """\
LIMIT = 10

class EmptyError(LookupError):
    pass

class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
        return self
    def pop(self):
        if not self.items:
            raise EmptyError("empty")
        return self.items.pop()
    def __len__(self):
        return len(self.items)
    def __eq__(self, other):
        return isinstance(other, Stack) and self.items == other.items

def countdown(n):
    while n > 0:
        yield n
        n -= 1

def apply_all(f, xs):
    return [f(x) for x in xs]

def sort_in_place(xs):
    xs.sort()

def shout(s):
    print(s.upper())

def save(path, text):
    with open(path, "w") as f:
        f.write(text)
"""

TEST = """\
import pytest
import solution
from solution import LIMIT, EmptyError, Stack, apply_all, countdown, save, shout, sort_in_place

def test_instances_and_isinstance():
    s = Stack().push(1).push(2)
    assert isinstance(s, Stack) and len(s) == 2 and s.pop() == 2
    assert Stack().push(3) == Stack().push(3)
    assert s.items == [1]

def test_own_exception_class():
    with pytest.raises(EmptyError, match="empty"):
        Stack().pop()
    with pytest.raises(LookupError):
        Stack().pop()

def test_generator():
    assert list(countdown(3)) == [3, 2, 1]

def test_callback_and_constant():
    assert apply_all(lambda x: x * LIMIT, [1, 2]) == [10, 20]

def test_mutation_is_copied_back():
    xs = [3, 1, 2]
    sort_in_place(xs)
    assert xs == [1, 2, 3]

def test_capsys(capsys):
    shout("hi")
    assert capsys.readouterr().out == "HI\\n"

def test_tmp_path(tmp_path):
    save(str(tmp_path / "out.txt"), "data")
    assert (tmp_path / "out.txt").read_text() == "data"

def test_module_attribute():
    assert solution.LIMIT == 10
"""

WRONG = PROGRAM.replace("xs.sort()", "xs.reverse()").replace(
    "return self.items.pop()", "return self.items[0]"
)


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=2) as ex:
        yield ex


def test_the_boundary_serves_what_tests_use(executor):
    good, wrong = executor.score(
        [ScoreItem(completion=PROGRAM, test=TEST), ScoreItem(completion=WRONG, test=TEST)]
    )
    assert (good.status, good.passed, good.total, good.judge) == (VerdictStatus.PASS, 8, 8, "isolated"), (
        good.detail
    )
    assert wrong.status is VerdictStatus.FAIL and wrong.judge == "isolated"
    assert wrong.passed == 6 and wrong.total == 8, wrong.output_tail


def test_humaneval_check_sees_prompt_helpers_through_the_boundary(executor):
    code = "def helper(x):\n    return x + 1\n\ndef f(x):\n    return helper(x) * 2\n"
    check = "def check(candidate):\n    assert candidate(1) == 4\n    assert helper(2) == 3\n"
    verdict = executor.score(
        [ScoreItem(completion=code, test=check, test_kind=TestKind.CHECK, entry_point="f")]
    )[0]
    assert (verdict.status, verdict.judge) == (VerdictStatus.PASS, "isolated"), verdict.detail


def test_tests_the_boundary_cannot_serve_run_in_process(executor):
    patching = "from solution import read\n\ndef test_r(monkeypatch):\n    monkeypatch.setattr('builtins.input', lambda: '5')\n    assert read() == 5\n"
    non_data = (
        "from solution import keys\n\nclass Box:\n    pass\n\ndef test_k():\n    assert keys(Box()) == []\n"
    )
    verdicts = executor.score(
        [
            ScoreItem(completion="def read():\n    return int(input())\n", test=patching),
            ScoreItem(completion="def keys(obj):\n    return sorted(vars(obj))\n", test=non_data),
        ]
    )
    assert [(v.status, v.judge) for v in verdicts] == [(VerdictStatus.PASS, "in_process")] * 2
    assert executor.ping()["counters"].get("fallbacks", 0) >= 1  # the second one: found at run time


def test_namedtuples_cross_by_value_and_stay_instances_of_the_programs_class(executor):
    code = "from collections import namedtuple\nPoint = namedtuple('Point', 'x y')\ndef mid(a, b):\n    return Point((a.x + b.x) / 2, (a.y + b.y) / 2)\n"
    test = (
        "from solution import Point, mid\n\ndef test_mid():\n    m = mid(Point(0, 0), Point(2, 4))\n"
        "    assert isinstance(m, Point) and m == (1, 2) and m.y == 2\n    assert not isinstance((1, 2), Point)\n"
    )
    verdict = executor.score([ScoreItem(completion=code, test=test)])[0]
    assert (verdict.status, verdict.judge) == (VerdictStatus.PASS, "isolated"), verdict.detail
