"""The warm fork server: a single-threaded process that preloads what tests need, isolates itself
(namespaces, pids cgroup, subreaper), takes jobs from the executor over a pipe, plans each test source
once, and runs one sandboxed child per execution (lifecycle.py) within its worker slots.
Run as `python -m reward.sandbox.forkserver --ctl-fd R --res-fd W`.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import hashlib
import importlib.util
import os
import selectors
import signal
import sys
import time
from typing import Any

from reward import protocol
from reward.harness.testplan import (
    TEST_FILENAME,
    TestPlan,
    imported_roots,
    plan_check,
    plan_pytest,
    plan_stdio,
)
from reward.judge.proxies import names_used_by
from reward.sandbox import guard, isolation, lifecycle, preload, zygote
from reward.sandbox.child import protected_snapshot
from reward.sandbox.lifecycle import SCRATCH_ROOT, ServerState

PLAN_CACHE = 512


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reward.sandbox.forkserver")
    parser.add_argument("--ctl-fd", type=int, required=True)
    parser.add_argument("--res-fd", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=32)
    parser.add_argument("--no-hide", action="store_true", help="do not hide data directories")
    parser.add_argument("--no-guard", action="store_true", help="disable the in-process audit guard (tests)")
    parser.add_argument("--preload", default="", help="extra packages to import, comma-separated (numpy,...)")
    parser.add_argument(
        "--judge",
        choices=("isolated", "in_process"),
        default="isolated",
        help="who runs the tests by default",
    )
    args = parser.parse_args(argv)
    try:
        optional = preload.preload(tuple(p for p in args.preload.split(",") if p))
        arm = guard.install()
        layers = isolation.setup_server(args.workers, args.nproc, hide=not args.no_hide)
    except Exception as exc:  # refuse to serve without the minimum; say why
        protocol.send(args.res_fd, {"op": "fatal", "detail": f"{type(exc).__name__}: {exc}"})
        return 2
    layers.audit_guard = not args.no_guard
    layers.no_new_privs = True
    os.makedirs(SCRATCH_ROOT, mode=0o711, exist_ok=True)
    os.chmod(SCRATCH_ROOT, 0o711)
    state = ServerState(
        arm=arm,
        layers=layers,
        trusted_files=guard.trusted_filenames([TEST_FILENAME]),
        trusted_types=frozenset(all_types()),
        workers=min(args.workers, isolation.JUDGE_UID_OFFSET),
        nproc=args.nproc,
        guard_enabled=not args.no_guard,
        res_fd=args.res_fd,
        snapshot=protected_snapshot(),
        free_slots=list(range(min(args.workers, isolation.JUDGE_UID_OFFSET)))[::-1],
    )
    gc.freeze()  # children never scan the preloaded heap: fewer copy-on-write faults per run
    if args.judge == "isolated":  # forked frozen too: its program processes inherit that
        state.zygote_pid, state.zygote = zygote.start(
            layers, (args.ctl_fd, args.res_fd), arm if not args.no_guard else None
        )
    protocol.send(
        args.res_fd,
        {
            "op": "ready",
            "pid": os.getpid(),
            "layers": layers.as_dict(),
            "uid_base": isolation.sandbox_uid(os.getpid(), 0),
            "preloaded": optional,
            "judge": args.judge,
            "zygote_pid": state.zygote_pid,
        },
    )
    try:
        serve(state, args.ctl_fd)
    finally:
        if layers.pids_cgroup:
            _leave_cgroup(layers.pids_cgroup)  # kills and reaps whatever is left in it
        isolation.remove_memory_cgroups(layers.memory_cgroup)
    return 0


def all_types() -> list[type]:
    """Every class that exists now (what the guard trusts as not made by solution code)."""
    seen: set[type] = set()
    stack: list[type] = [object]
    while stack:
        tp = stack.pop()
        if tp in seen:
            continue
        seen.add(tp)
        try:
            stack.extend(type.__subclasses__(tp))
        except TypeError:
            continue
    return list(seen)


def serve(state: ServerState, ctl_fd: int) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the executor ends us by closing the pipe
    sel = selectors.DefaultSelector()
    sel.register(ctl_fd, selectors.EVENT_READ, "ctl")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    if state.zygote is not None:
        sel.register(state.zygote, selectors.EVENT_READ, "zygote")
    reader = protocol.Reader(ctl_fd)
    closing = False
    while not closing or state.runs or state.helpers:
        timeout = _next_timeout(state)
        for key, _ in sel.select(timeout):
            if key.data == "ctl":
                messages, eof = reader.read()
                for msg in messages:
                    _handle(state, msg)
                if eof:
                    closing = True
                    sel.unregister(ctl_fd)
                    state.queue.clear()
                    for run in state.runs.values():
                        lifecycle.kill(state, run, timed_out=False)
            elif key.data == "wake":
                zygote.drain(wake_r)
            elif key.data == "zygote":
                lifecycle.read_zygote(state)
            else:
                lifecycle.read_result(state, key.data, sel)
        lifecycle.reap(state, sel)
        lifecycle.enforce_deadlines(state)
        if not closing:
            _start_queued(state, sel)


def _ignore(signum: int, frame: Any) -> None:
    return None


def _next_timeout(state: ServerState) -> float | None:
    if not state.runs:
        return None if not state.helpers else 0.05
    now = time.monotonic()
    nearest = (
        min(r.deadline for r in state.runs.values() if not r.timed_out)
        if any(not r.timed_out for r in state.runs.values())
        else now + 0.05
    )
    return max(0.0, min(nearest - now, 0.25))


def _handle(state: ServerState, msg: dict[str, Any]) -> None:
    op = msg.get("op")
    if op == "run":
        state.queue.append({**msg["job"], "_t_recv": time.monotonic()})
    elif op == "cancel":
        job_id = msg["id"]
        before = len(state.queue)
        state.queue = collections.deque(j for j in state.queue if j["id"] != job_id)
        if len(state.queue) == before:
            for run in state.runs.values():
                if run.job["id"] == job_id:
                    state.cancelled.add(job_id)
                    lifecycle.kill(state, run, timed_out=False)
    elif op == "ping":
        pong = {"running": len(state.runs), "queued": len(state.queue), "counters": dict(state.counters)}
        try:
            protocol.send(state.res_fd, {"op": "pong", **pong})
        except OSError:
            pass


def _plan(state: ServerState, job: dict[str, Any]) -> TestPlan:
    key = (job["kind"], hashlib.sha256(job["test"].encode("utf-8", "replace")).hexdigest())
    plan = state.plans.get(key)
    if plan is None:
        maker = {"pytest": plan_pytest, "check": plan_check, "stdio": plan_stdio}[job["kind"]]
        plan = maker(job["test"])
        missing = sorted(_unavailable(job["test"])) if job["kind"] != "stdio" else []
        if missing and not plan.broken:
            # A module that is not installed beside the service: the problem's fault, not the program's.
            reason = f"the tests import {', '.join(missing)}, which is not installed beside the service"
            plan = TestPlan(False, reason, None, broken=True)
        state.plans[key] = plan
        if len(state.plans) > PLAN_CACHE:
            state.plans.popitem(last=False)
    state.plans.move_to_end(key)
    return plan


def _unavailable(test: str) -> set[str]:
    """Top-level modules the test imports that cannot be found (the fork server sees the sandbox's
    file system: the standard library and site-packages, read-only)."""
    missing = set()
    for name in imported_roots(test):
        if name in sys.modules or name == "solution":
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.add(name)
    return missing


def _start_queued(state: ServerState, sel: selectors.BaseSelector) -> None:
    while state.queue and state.free_slots:
        job = state.queue.popleft()
        plan = _plan(state, job)
        if plan.broken:
            lifecycle.send_result(
                state, job, {"status": "bad_test", "detail": f"bad test: {plan.reason}"[:500]}
            )
            continue
        lifecycle.start_run(state, sel, job, plan, job.get("mode") or default_mode(state, job, plan))


def default_mode(state: ServerState, job: dict[str, Any], plan: TestPlan) -> str:
    """The isolated judge wherever it can serve the test: the fast path, HumanEval checks and STDIO
    cases whose tests import nothing but the standard library, pytest and the solution (values of
    other packages, numpy arrays say, do not cross the boundary as data)."""
    base = ("fast" if plan.fast else "pytest") if job["kind"] == "pytest" else job["kind"]
    if state.zygote is None:
        return base
    if job["kind"] != "stdio" and not _isolatable(job["test"]):
        return base
    return "iso_" + base


_ISOLATABLE_IMPORTS = frozenset(sys.stdlib_module_names) | {"pytest", "_pytest", "solution"}
# Tests that patch process-wide state (builtins.input, os.environ, sys.stdin, the cwd, mocks) expect
# the program to see the patch: the judge's process is not the program's, so those run in-process.
_SHARED_PROCESS_NAMES = frozenset(
    {"monkeypatch", "mock", "patch", "MagicMock", "Mock", "builtins", "environ", "stdin", "setattr", "chdir"}
)


@functools.lru_cache(maxsize=PLAN_CACHE)
def _isolatable(test: str) -> bool:
    return imported_roots(test) <= _ISOLATABLE_IMPORTS and not (names_used_by(test) & _SHARED_PROCESS_NAMES)


def _leave_cgroup(path: str) -> None:
    """Move out of our cgroup, kill and reap what is left in it, remove it."""
    try:
        with open(os.path.join(os.path.dirname(path), "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        return
    isolation.remove_cgroup(path, wait_s=5.0, reap=True)


if __name__ == "__main__":
    sys.exit(main())
