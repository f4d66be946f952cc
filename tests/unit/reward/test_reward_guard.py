"""Guard decisions (reward/sandbox/guard.py) without the sandbox: a fresh interpreter installs and arms
the audit hook, runs snippets as solution code called from a test-file frame, and reports what each one got.
Library bookkeeping on the solution's behalf must pass; reading the test's frame or constants, by any
route, must be refused. (A subprocess because an audit hook cannot be removed once added.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r'''
import collections, dataclasses, dis, enum, functools, inspect, io, json, logging, sys, traceback
import typing, warnings
from unittest import mock
import typing_extensions
from reward.sandbox import guard
from reward.sandbox.forkserver import all_types

SOL, TEST = "/sandbox-unit/solution.py", "/sandbox-unit/test_solution.py"
CASES = json.loads(sys.stdin.read())


TEST_SRC = """
class Node:
    def __init__(self, v):
        self.v = v

def run(solve):
    expected = 1000001
    got = solve(run, Node)
    return "LEAKED" if got == expected else got
"""

def main():
    trusted = guard.trusted_filenames([TEST])
    types_before = frozenset(all_types())
    arm = guard.install()
    arm(guard.GuardConfig(solution_files={SOL}, trusted_files=trusted, test_files=frozenset({TEST}),
                          trusted_types=types_before))
    test_ns = {"__name__": "test_solution"}
    exec(compile(TEST_SRC, TEST, "exec"), test_ns)
    results = {}
    for name, src in CASES.items():
        ns = {"__name__": "solution"}
        try:
            exec(compile(src, SOL, "exec"), ns)
            out = test_ns["run"](ns["solve"])
            results[name] = "LEAKED" if out == "LEAKED" else "ok"
        except guard.SandboxViolation as exc:
            results[name] = "refused: " + str(exc)
        except BaseException as exc:
            results[name] = "error: " + type(exc).__name__ + ": " + str(exc)
    print(json.dumps(results))

main()
'''

ALLOWED = {
    "namedtuple": """
        from collections import namedtuple
        Employee = namedtuple('Employee', ['name', 'level'], defaults=[1])
        Employee.__doc__ = 'staff'
        Employee.__new__.__defaults__ = (1,)
        def solve(test, Node):
            assert Employee('ann')._replace(level=2) == ('ann', 2)
            return 'fine'
    """,
    "dataclass": """
        from dataclasses import dataclass, field, make_dataclass, asdict
        @dataclass(frozen=True, order=True)
        class P:
            x: int
            ys: list = field(default_factory=list)
        Q = make_dataclass('Q', ['a'])
        def solve(test, Node):
            assert asdict(P(1)) == {'x': 1, 'ys': []} and Q(1).a == 1
            return 'fine'
    """,
    "enum": """
        import enum
        class Color(enum.Enum):
            RED = enum.auto()
        Shape = enum.Enum('Shape', 'SQUARE CIRCLE')
        Bits = enum.IntFlag('Bits', ['A', 'B'])
        def solve(test, Node):
            assert Shape.CIRCLE.value == 2 and (Bits.A | Bits.B) == 3
            return 'fine'
    """,
    "typing": """
        from typing import Dict, Generic, List, NamedTuple, Optional, Protocol, TypedDict, TypeVar
        from typing import runtime_checkable
        import typing_extensions
        T = TypeVar('T')
        class Box(Generic[T]):
            pass
        class Pt(NamedTuple):
            x: int
            y: int = 0
        class TD(TypedDict):
            a: int
        @runtime_checkable
        class Sized(Protocol):
            def size(self) -> int: ...
        class TE(typing_extensions.TypedDict):
            b: int
        def solve(test, Node):
            x: Dict[str, List[Optional[int]]] = {}
            assert Pt(1).y == 0 and Box[int]() is not None and not isinstance(1, Sized)
            return 'fine'
    """,
    "logging_and_traceback": """
        import io, logging, traceback, warnings
        def solve(test, Node):
            buf = io.StringIO()
            log = logging.getLogger('unit')
            handler = logging.StreamHandler(buf)
            handler.setFormatter(logging.Formatter('%(funcName)s:%(lineno)d %(message)s'))
            log.addHandler(handler)
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception('boom')
                text = traceback.format_exc()
            traceback.format_stack()
            with warnings.catch_warnings(record=True):
                warnings.warn('w', stacklevel=2)
            assert 'solve:' in buf.getvalue() and 'ZeroDivisionError' in text
            return 'fine'
    """,
    "own_class_and_frames_of_own_code": """
        def gen():
            yield 1
        class K:
            pass
        K.__name__ = K.__qualname__ = 'Renamed'
        def solve(test, Node):
            g = gen()
            assert g.gi_code.co_name == 'gen' and solve.__code__.co_name == 'solve'
            return 'fine'
    """,
}

REFUSED = {
    "caller_frame_locals": """
        import sys
        def solve(test, Node):
            return sys._getframe(1).f_locals['expected']
    """,
    "test_code_constants_via_frame": """
        import sys
        def solve(test, Node):
            return max(c for c in sys._getframe(1).f_code.co_consts if isinstance(c, int))
    """,
    "test_code_constants_via_function": """
        def solve(test, Node):
            return max(c for c in test.__code__.co_consts if isinstance(c, int))
    """,
    "test_code_constants_via_dis": """
        import dis
        def solve(test, Node):
            return max(i.argval for i in dis.get_instructions(test) if isinstance(i.argval, int))
    """,
    "inspect_currentframe": """
        import inspect
        def solve(test, Node):
            return inspect.currentframe().f_back.f_locals['expected']
    """,
    "inspect_stack": """
        import inspect
        def solve(test, Node):
            return inspect.stack()[1].frame.f_locals['expected']
    """,
    "walk_stack_capture_locals": """
        import traceback
        def solve(test, Node):
            s = traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True)
            return int(next(f.locals['expected'] for f in s if f.locals and 'expected' in f.locals))
    """,
    "logging_currentframe": """
        import logging
        def solve(test, Node):
            return logging.currentframe().f_back.f_locals['expected']
    """,
    "getframe_fed_to_namedtuple": """
        import sys
        from collections import namedtuple
        def solve(test, Node):
            P = namedtuple('P', 'x', defaults=map(sys._getframe, [2]))
            return P._field_defaults['x'].f_locals['expected']
    """,
    "getframe_as_mock_side_effect": """
        import sys
        from unittest import mock
        def solve(test, Node):
            return mock.Mock(side_effect=sys._getframe)(2).f_locals['expected']
    """,
    "traceback_frame": """
        def solve(test, Node):
            try:
                raise ValueError
            except ValueError as e:
                return e.__traceback__.tb_frame.f_back.f_locals['expected']
    """,
    "rebind_guard_functions": """
        import sys
        g = sys.modules['reward.sandbox.guard']
        def solve(test, Node):
            g._check = g._in_solution_context = lambda *a: None
            return sys._getframe(1).f_locals['expected']
    """,
    "str_subclass_filename_hash": """
        import sys
        seen = []
        class S(str):
            def __hash__(self):
                seen.append(sys._getframe(3).f_locals.get('expected'))
                return str.__hash__(self)
        def solve(test, Node):
            compile('x = 1', S('other.py'), 'exec')  # refused before anything hashes the name
            return seen[-1] if seen else 'none'
    """,
    "rename_test_class": """
        def solve(test, Node):
            Node.__name__ = 'Changed'
            return 'renamed'
    """,
    "set_test_function_code": """
        def solve(test, Node):
            def other(s):
                return 1000001
            test.__code__ = other.__code__
            return 'replaced'
    """,
}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    cases = {name: textwrap.dedent(src) for name, src in {**ALLOWED, **REFUSED}.items()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_library_bookkeeping_on_the_solutions_behalf_is_allowed(outcomes: dict[str, str], name: str) -> None:
    assert outcomes[name] == "ok"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_reading_the_tests_frames_or_constants_is_refused(outcomes: dict[str, str], name: str) -> None:
    assert outcomes[name].startswith("refused: sandbox:"), outcomes[name]
