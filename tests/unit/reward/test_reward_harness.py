"""The fast-path harness in-process (no sandbox): collection and fixture semantics that must match
real pytest, outcomes per test, and the switch to real pytest for what it does not implement."""

from __future__ import annotations

import os
import sys

import pytest

from reward.harness import fast_path
from reward.harness.compare import make_comparators
from reward.harness.fixtures import Unsupported
from reward.harness.testplan import plan_pytest
from reward.sandbox.child import _SolutionFinder


def run(tmp_path, test: str, solution: str = "def f(x):\n    return x\n", tamper: str = ""):
    plan = plan_pytest(test)
    assert plan.fast, plan.reason
    records: list[dict[str, object]] = []
    path = str(tmp_path / "solution.py")
    finder = _SolutionFinder(path, solution)
    sys.meta_path.insert(0, finder)
    try:
        namespace = make_comparators(frozenset(), frozenset())
        assert plan.code is not None
        fast_path.run_module(
            plan.code, namespace, tmp_path, lambda kind, **f: records.append({"t": kind, **f}), lambda: tamper
        )
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop("solution", None)
    return records


def outcomes(records):
    return {r["name"]: r["outcome"] for r in records if r["t"] == "test"}


def test_functions_classes_and_parametrize_are_collected_like_pytest(tmp_path):
    test = (
        "import pytest\nfrom solution import f\n"
        "@pytest.mark.parametrize('a,b', [(1, 1), (2, 2), pytest.param(3, 4, id='odd')])\n"
        "def test_p(a, b):\n    assert f(a) == b\n"
        "class TestK:\n    def test_m(self):\n        assert f(1) == 1\n    def helper(self):\n        pass\n"
        "class TestWithInit:\n    def __init__(self):\n        pass\n"
        "    def test_never(self):\n        pass\n"
        "def test_returns_value():\n    return 5\n"
        "def not_a_test():\n    assert False\n"
    )
    records = run(tmp_path, test)
    assert records[0] == {"t": "collected", "total": 5}
    assert outcomes(records) == {
        "test_p[0]": "passed",
        "test_p[1]": "passed",
        "test_p[odd]": "failed",
        "TestK::test_m": "passed",
        "test_returns_value": "passed",
    }


def test_fixture_scopes_teardown_order_and_autouse(tmp_path):
    test = (
        "import pytest\nlog = []\n"
        "@pytest.fixture(scope='module')\ndef shared():\n    log.append('shared')\n"
        "    yield 1\n    log.append('/shared')\n"
        "@pytest.fixture\ndef outer(shared):\n    log.append('outer')\n"
        "    yield shared + 1\n    log.append('/outer')\n"
        "@pytest.fixture(autouse=True)\ndef auto():\n    log.append('auto')\n"
        "def test_one(outer):\n    assert outer == 2\n"
        "def test_two(outer, shared):\n"
        "    assert log == ['auto', 'shared', 'outer', '/outer', 'auto', 'outer']\n"
    )
    assert set(outcomes(run(tmp_path, test)).values()) == {"passed"}


def test_builtin_fixtures(tmp_path):
    test = (
        "import os, sys\nseen = []\n"
        "def test_tmp(tmp_path):\n    seen.append(tmp_path)\n    (tmp_path / 'x').write_text('1')\n"
        "def test_tmp_again(tmp_path):\n    assert tmp_path != seen[0] and not (tmp_path / 'x').exists()\n"
        "def test_capsys(capsys):\n    print('out')\n    sys.stderr.write('err')\n"
        "    assert tuple(capsys.readouterr()) == ('out\\n', 'err')\n    print('again')\n"
        "    assert capsys.readouterr().out == 'again\\n'\n"
        "def test_monkeypatch(monkeypatch):\n    monkeypatch.setenv('RL_HARNESS_X', '1')\n"
        "    monkeypatch.setattr('builtins.input', lambda *a: 'typed')\n    assert input() == 'typed'\n"
        "def test_undone():\n    assert 'RL_HARNESS_X' not in os.environ\n"
    )
    stdout = sys.stdout
    assert set(outcomes(run(tmp_path, test)).values()) == {"passed"}
    assert sys.stdout is stdout


def test_xunit_setup_and_class_fixtures(tmp_path):
    test = (
        "import pytest\nstate = {'module': 0}\n"
        "def setup_module(module):\n    state['module'] += 1\n"
        "class TestC:\n    @classmethod\n    def setup_class(cls):\n        cls.items = []\n"
        "    def setup_method(self, method):\n        self.items.append(method.__name__)\n"
        "    @pytest.fixture\n    def doubled(self):\n        return len(self.items) * 2\n"
        "    def test_a(self, doubled):\n        assert self.items == ['test_a'] and doubled == 2\n"
        "    def test_b(self):\n        assert self.items == ['test_a', 'test_b'] and state['module'] == 1\n"
    )
    assert outcomes(run(tmp_path, test)) == {"TestC::test_a": "passed", "TestC::test_b": "passed"}


def test_outcome_kinds(tmp_path):
    test = (
        "import pytest\nfrom solution import f\n"
        "def test_assert():\n    assert f(1) == 2\n"
        "def test_fail_call():\n    pytest.fail('no')\n"
        "def test_not_raised():\n    with pytest.raises(ValueError):\n        f(1)\n"
        "def test_exception():\n    {}['missing']\n"
        "def test_memory():\n    raise MemoryError\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('setup')\n"
        "def test_setup_error(broken):\n    pass\n"
        "@pytest.mark.skip(reason='x')\ndef test_skipped():\n    assert False\n"
        "@pytest.mark.skipif(False, reason='runs')\ndef test_skipif_false():\n    pass\n"
    )
    records = run(tmp_path, test)
    assert records[0]["total"] == 7
    assert outcomes(records) == {
        "test_assert": "failed",
        "test_fail_call": "failed",
        "test_not_raised": "failed",
        "test_exception": "error",
        "test_memory": "memory",
        "test_setup_error": "error",
        "test_skipif_false": "passed",
    }
    detail = next(r["detail"] for r in records if r.get("name") == "test_assert")
    assert "assert 1 == 2" in str(detail)


def test_collection_error_is_reported_once(tmp_path):
    records = run(tmp_path, "from solution import missing\ndef test_a():\n    pass\n")
    assert [r["t"] for r in records] == ["error"]
    assert "ImportError" in str(records[0]["detail"])


@pytest.mark.parametrize(
    "test",
    [
        "def test_a(some_plugin_fixture):\n    pass\n",
        "import pytest\n@pytest.fixture(params=[1, 2])\ndef p():\n    return 1\ndef test_a(p):\n    pass\n",
        "import pytest\n@pytest.mark.parametrize('x', [pytest.param(1, marks=pytest.mark.integration)])\n"
        "def test_a(x):\n    pass\n",
    ],
)
def test_unknown_features_raise_unsupported_before_any_test_runs(tmp_path, test):
    with pytest.raises(Unsupported):
        run(tmp_path, test)


def test_tampering_aborts_the_run(tmp_path):
    records = run(
        tmp_path, "def test_a():\n    pass\ndef test_b():\n    pass\n", tamper="pytest was modified"
    )
    assert records[-1]["t"] == "abort"
    assert outcomes(records) == {"test_a": "error"}


def test_environment_is_left_as_found(tmp_path):
    before = dict(os.environ)
    run(
        tmp_path,
        "def test_a(monkeypatch):\n    monkeypatch.setenv('ZZ_RL', '1')\n    monkeypatch.chdir('/')\n",
    )
    assert dict(os.environ) == before
