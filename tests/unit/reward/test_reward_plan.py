"""Static plans: which test files the fast path runs, which fall back to real pytest, and hardening."""

from __future__ import annotations

import pytest

from reward.harness.testplan import plan_check, plan_pytest, plan_stdio

SIMPLE = (
    "import pytest\nfrom solution import f\n\n@pytest.mark.parametrize('x', [1, 2])\n"
    "def test_f(x):\n    assert f(x) == x\n"
)


def test_supported_file_takes_the_fast_path_and_is_hardened():
    plan = plan_pytest(SIMPLE)
    assert plan.fast and not plan.broken and plan.code is not None
    functions = [c for c in plan.code.co_consts if hasattr(c, "co_names")]
    assert any("__rl_eq__" in c.co_names for c in functions)  # `f(x) == x` calls the hardened compare


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import pytest\n@pytest.mark.xfail\ndef test_a():\n    pass\n", "xfail"),
        ("import pytest\ndef test_a():\n    pytest.skip('x')\n", "pytest.skip"),
        ("def test_a(request):\n    pass\n", "request"),
        ("def test_a(capfd):\n    pass\n", "capfd"),
        (
            "import unittest\nclass TestA(unittest.TestCase):\n    def test_a(self):\n        pass\n",
            "TestCase",
        ),
        ("async def test_a():\n    pass\n", "async"),
        ("def pytest_generate_tests(metafunc):\n    pass\n", "hook"),
        ("def test_a():\n    yield 1\n", "yield"),
        ("from _pytest.outcomes import fail\n", "internals"),
    ],
)
def test_unsupported_features_fall_back_to_real_pytest(source, reason):
    plan = plan_pytest(source)
    assert not plan.fast and not plan.broken
    assert reason in plan.reason


def test_broken_test_source_is_not_the_models_fault():
    plan = plan_pytest("def test_a(:\n")
    assert plan.broken and "does not compile" in plan.reason


def test_check_plan_requires_a_check_function():
    assert plan_check("def check(candidate):\n    assert candidate(1) == 2\n").fast
    assert plan_check("def test_x():\n    pass\n").broken


def test_stdio_plan_parses_cases():
    plan = plan_stdio('[{"input": "1 2\\n", "output": "3\\n"}]')
    assert plan.cases == (("1 2\n", "3\n"),)
    assert plan_stdio("not json").broken
    assert plan_stdio("[]").broken
