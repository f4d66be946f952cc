"""Hardened comparisons: objects whose equality comes from solution code cannot fake a match."""

from __future__ import annotations

import collections
import fractions

import pytest

from reward.harness.compare import describe_last, make_comparators
from reward.sandbox.forkserver import all_types
from reward.sandbox.guard import trusted_filenames

TRUSTED_TYPES = frozenset(all_types())


@pytest.fixture(scope="module")
def cmp():
    return make_comparators(trusted_filenames(["/sandbox/test_solution.py"]), TRUSTED_TYPES)


def _solution(source: str) -> dict[str, object]:
    """Define classes the way a solution would: code compiled from an untrusted file."""
    namespace: dict[str, object] = {}
    exec(compile(source, "/tmp/scratch/solution.py", "exec"), namespace)
    return namespace


ALWAYS = _solution(
    "import functools, operator\n"
    "class Eq:\n    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n"
    "class IntEq(int):\n    def __eq__(self, other):\n        return True\n"
    "Partial = type('Partial', (), {'__eq__': functools.partial(operator.is_not, None)})\n"
    "class Point:\n    def __init__(self, x):\n        self.x = x\n"
    "    def __eq__(self, other):\n        return isinstance(other, Point) and other.x == self.x\n"
)


@pytest.mark.parametrize("fake", ["Eq", "IntEq", "Partial"])
def test_always_equal_objects_do_not_match_builtin_values(cmp, fake):
    obj = ALWAYS[fake]() if fake != "IntEq" else ALWAYS[fake](0)  # type: ignore[operator]
    assert obj == 3  # natively it lies
    assert not cmp["__rl_eq__"](obj, 3)
    assert not cmp["__rl_eq__"]([obj, obj], [1, 2])
    assert not cmp["__rl_eq__"]({"k": obj}, {"k": "v"})
    assert cmp["__rl_ne__"](obj, 3)
    assert not cmp["__rl_in__"](obj, [1, 2, 3])


def test_builtin_and_stdlib_values_compare_natively(cmp):
    eq = cmp["__rl_eq__"]
    assert eq(3, 3) and eq([1, (2, 3)], [1, (2, 3)]) and eq({"a": [1]}, {"a": [1]})
    assert eq(fractions.Fraction(1, 2), 0.5)
    point = collections.namedtuple("point", "x y")
    assert eq(point(1, 2), (1, 2))
    assert eq(collections.Counter("aab"), {"a": 2, "b": 1})
    assert not eq([1, 2], (1, 2))
    assert cmp["__rl_in__"](2, [1, 2]) and cmp["__rl_notin__"](5, [1, 2])


def test_solution_objects_compare_with_each_other_natively(cmp):
    point = ALWAYS["Point"]
    assert cmp["__rl_eq__"](point(1), point(1))  # type: ignore[operator]
    assert not cmp["__rl_eq__"](point(1), point(2))  # type: ignore[operator]


def test_last_false_comparison_is_described(cmp):
    assert not cmp["__rl_eq__"]([1, 2], [1, 3])
    assert describe_last(cmp["__rl_last__"]) == "assert [1, 2] == [1, 3]"
