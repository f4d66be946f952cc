"""Static plan for a test source: parse it once, decide whether the fast-path harness can run it or
real pytest must, and compile it with hardened comparisons. Pure (no I/O), cached by the fork server.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from types import CodeType
from typing import Any

from reward.harness.compare import harden

TEST_MODULE = "test_solution"
TEST_FILENAME = "/sandbox/test_solution.py"  # the test code's filename: trusted, never on disk

# pytest attributes the fast path implements (or that work without a pytest session).
_PYTEST_OK = frozenset(
    {"raises", "approx", "mark", "fixture", "fail", "param", "warns", "deprecated_call", "MonkeyPatch"}
)
_MARKS_UNSUPPORTED = frozenset(
    {"xfail", "filterwarnings", "asyncio", "anyio", "trio", "tryfirst", "trylast", "hookwrapper"}
)
# Builtin fixtures the fast path does not provide; a test asking for one runs under real pytest.
_FIXTURES_UNSUPPORTED = frozenset(
    {
        "request",
        "capfd",
        "capfdbinary",
        "capsysbinary",
        "caplog",
        "recwarn",
        "tmpdir",
        "tmpdir_factory",
        "pytestconfig",
        "record_property",
        "record_testsuite_property",
        "record_xml_attribute",
        "testdir",
        "pytester",
        "doctest_namespace",
        "cache",
        "subtests",
        "monkeypatch_session",
    }
)


@dataclass(frozen=True)
class TestPlan:
    """How to run one test source."""

    __test__ = False  # not a pytest test class

    fast: bool  # the fast-path harness supports it
    reason: str  # why not (empty when fast), or why the test source itself is broken
    code: CodeType | None  # hardened compiled test module (pytest and check kinds)
    broken: bool = False  # the test source itself does not parse: infra_error, not the model's fault
    cases: tuple[tuple[str, str], ...] = ()  # stdio kind: (input, expected output)


def plan_pytest(source: str) -> TestPlan:
    tree = _parse(source)
    if isinstance(tree, str):
        return TestPlan(False, tree, None, broken=True)
    reason = _unsupported(tree)
    code = compile(harden(tree), TEST_FILENAME, "exec", dont_inherit=True)
    return TestPlan(not reason, reason, code)


def plan_check(source: str) -> TestPlan:
    tree = _parse(source)
    if isinstance(tree, str):
        return TestPlan(False, tree, None, broken=True)
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    if not defines_check:
        return TestPlan(False, "check-style test defines no check(candidate)", None, broken=True)
    return TestPlan(True, "", compile(harden(tree), TEST_FILENAME, "exec", dont_inherit=True))


def plan_stdio(source: str) -> TestPlan:
    try:
        raw = json.loads(source)
        cases = tuple((str(c["input"]), str(c["output"])) for c in raw)
    except (ValueError, TypeError, KeyError) as exc:
        return TestPlan(
            False, f"stdio test is not a JSON list of input/output cases: {exc}", None, broken=True
        )
    if not cases:
        return TestPlan(False, "stdio test has no cases", None, broken=True)
    return TestPlan(True, "", None, cases=cases)


def imported_roots(source: str) -> set[str]:
    """Top-level package names a test source imports (absolute imports only)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def _parse(source: str) -> ast.Module | str:
    try:
        return ast.parse(source, filename=TEST_FILENAME)
    except (SyntaxError, ValueError) as exc:
        return f"test source does not compile: {exc}"


def _unsupported(tree: ast.Module) -> str:
    """Why the fast path cannot run this module ("" when it can)."""
    aliases = _pytest_aliases(tree)
    for node in ast.walk(tree):
        reason = _node_reason(node, aliases)
        if reason:
            return reason
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("pytest_"):
            return f"pytest hook {node.name} in the test module"
        if isinstance(node, ast.ClassDef) and any("TestCase" in ast.unparse(b) for b in node.bases):
            return "unittest.TestCase class"
    return ""


def _pytest_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to pytest ("pytest") or to one of its attributes (that attribute's name)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "pytest":
                    aliases[a.asname or "pytest"] = "pytest"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("pytest", "_pytest"):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
    return aliases


def _node_reason(node: ast.AST, aliases: dict[str, str]) -> str:
    if isinstance(node, ast.ImportFrom):
        return _import_reason(node)
    if isinstance(node, ast.Attribute):
        return _attribute_reason(node, aliases)
    if isinstance(node, ast.AsyncFunctionDef):
        return "async function"
    if isinstance(node, ast.FunctionDef):
        return _function_reason(node)
    return ""


def _import_reason(node: ast.ImportFrom) -> str:
    if (node.module or "").startswith("_pytest"):
        return f"imports pytest internals ({node.module})"
    if node.module == "pytest":
        bad = [a.name for a in node.names if a.name not in _PYTEST_OK and not a.name[:1].isupper()]
        if bad:
            return f"uses pytest.{bad[0]}"
    return ""


def _attribute_reason(node: ast.Attribute, aliases: dict[str, str]) -> str:
    base = node.value
    if isinstance(base, ast.Name):
        if aliases.get(base.id) == "pytest" and node.attr not in _PYTEST_OK and not node.attr[:1].isupper():
            return f"uses pytest.{node.attr}"
        if aliases.get(base.id) == "mark" and node.attr in _MARKS_UNSUPPORTED:
            return f"uses mark {node.attr}"
        if base.id == "capsys" and node.attr == "disabled":
            return "capsys.disabled()"
    if isinstance(base, ast.Attribute) and base.attr == "mark" and node.attr in _MARKS_UNSUPPORTED:
        return f"uses mark {node.attr}"
    return ""


def _function_reason(node: ast.FunctionDef) -> str:
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
    bad = [p for p in params if p in _FIXTURES_UNSUPPORTED]
    if bad and (node.name.startswith("test") or _is_fixture(node)):
        return f"fixture {bad[0]}"
    if node.name.startswith("test") and not _is_fixture(node) and _yields(node):
        return "yield in a test function"
    return ""


def _is_fixture(node: ast.FunctionDef) -> bool:
    return any("fixture" in ast.unparse(d) for d in node.decorator_list)


def _yields(node: ast.FunctionDef) -> bool:
    """A yield in this function's own body (not in nested functions)."""
    stack: list[Any] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(child))
    return False
