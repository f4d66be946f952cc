"""The public/hidden split of a problem's tests for multi-turn feedback. Feedback is computed against
the public part only and the reward against the whole test, so an answer that hard-codes what the
feedback revealed still fails the hidden part. Pure (ast and json only).

What counts as one test: a top-level `test*` function or `Test*` class (pytest; imports, fixtures,
helpers and constants all stay), a top-level statement of `check(candidate)` that asserts something
(HumanEval), one stdin/stdout case (stdio). At least one test stays hidden whenever there are two or
more; a test source with a single test (or one that does not parse) is public as a whole, so feedback
on such a problem can reveal everything its reward checks (`has_hidden_tests` says which).
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace

from rlcoder.records import Problem, TestKind


def public_test_source(test: str, kind: TestKind, n_public: int) -> str:
    """The public part of `test`: its first `n_public` tests, keeping at least one test hidden."""
    if n_public < 1:
        raise ValueError(f"n_public must be >= 1, got {n_public}")
    if kind is TestKind.STDIO:
        return _public_stdio(test, n_public)
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return test
    if kind is TestKind.CHECK:
        return _public_check(test, tree, n_public)
    return _public_pytest(test, tree, n_public)


def with_public_tests(problem: Problem, n_public: int) -> Problem:
    """The problem with `public_test` filled in (a copy), unless it already has one."""
    if problem.public_test:
        return problem
    return replace(problem, public_test=public_test_source(problem.test, problem.test_kind, n_public))


def has_hidden_tests(problem: Problem) -> bool:
    """Whether the reward checks something the public tests (and so the feedback) do not show."""
    return bool(problem.public_test) and problem.public_test.strip() != problem.test.strip()


def _kept(n_units: int, n_public: int) -> int:
    return n_units if n_units < 2 else min(n_public, n_units - 1)


def _is_unit(node: ast.stmt) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name.startswith("test")
    return isinstance(node, ast.ClassDef) and node.name.startswith("Test")


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _public_pytest(test: str, tree: ast.Module, n_public: int) -> str:
    units = [node for node in tree.body if _is_unit(node)]
    keep = _kept(len(units), n_public)
    if keep == len(units):
        return test
    dropped = {id(node) for node in units[keep:]}
    lines = test.splitlines(keepends=True)
    # Whole statements only (a compound statement never shares its lines with another). Top-level
    # comments between statements go too: a comment above a hidden test may describe it.
    out: list[str] = []
    for node in tree.body:
        if id(node) not in dropped:
            out.extend(lines[_first_line(node) - 1 : node.end_lineno or node.lineno])
            out.append("\n")
    return "".join(out)


def _asserts(node: ast.stmt) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert) and not isinstance(sub.test, ast.Constant):
            return True  # `assert True, "..."` (HumanEval's debugging hint) checks nothing
    return False


def _public_check(test: str, tree: ast.Module, n_public: int) -> str:
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"),
        None,
    )
    if check is None:
        return test
    units = [stmt for stmt in check.body if _asserts(stmt)]
    keep = _kept(len(units), n_public)
    if keep == len(units):
        return test
    cut = units[keep - 1].end_lineno or units[keep - 1].lineno
    next_line = units[keep].lineno
    lines = test.splitlines(keepends=True)
    if cut >= next_line:
        return test  # two asserts on one line: no safe cut
    tail = lines[(check.end_lineno or cut) :]
    return "".join([*lines[:cut], "\n", *tail])


def _public_stdio(test: str, n_public: int) -> str:
    try:
        cases = json.loads(test)
    except ValueError:
        return test
    if not isinstance(cases, list):
        return test
    keep = _kept(len(cases), n_public)
    return test if keep == len(cases) else json.dumps(cases[:keep], ensure_ascii=False)
