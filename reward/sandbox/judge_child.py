"""The body of an isolated judge process: forked from the fork server, it enters a sandbox of its own
(the judge uid, limits, no network) and runs the test against the program process across the
channel (reward/judge/runner.py), reporting through the authenticated result channel. The program
never runs here, so the audit guard stays off and nothing of the program can reach this process.
"""

from __future__ import annotations

import os
import pathlib
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

from reward.harness.compare import make_comparators
from reward.harness.fixtures import Unsupported
from reward.judge import runner
from reward.sandbox import isolation
from reward.sandbox.child import ChildSpec, _exception_line, make_emit


def judge_main(spec: ChildSpec, channel_fd: int, gid: int, _exit: Any = os._exit) -> None:
    """Never returns (see child.child_main)."""
    try:
        _judge_body(spec, channel_fd, gid, _exit)
    finally:
        _exit(0)


def _judge_body(spec: ChildSpec, channel_fd: int, gid: int, _exit: Callable[[int], None]) -> None:
    try:
        fd = isolation.enter_child(
            spec.uid,
            spec.limits,
            spec.scratch,
            spec.out_fd,
            spec.result_fd,
            spec.layers,
            keep_fd=channel_fd,
            gid=gid,
        )
        os.umask(0o002)  # tmp_path files the program may write to
    except BaseException:
        _exit(1)  # no `ready`: the service's failure (see verdicts.summarize)
    emit = make_emit(fd, spec.nonce)
    emit("ready")
    started = time.perf_counter()
    cpu0 = _cpu_ms()
    try:
        namespace = make_comparators(spec.trusted_files, spec.trusted_types)
        runner.run(
            spec.mode,
            spec.plan,
            spec.test_source,
            spec.entry_point,
            4,
            pathlib.Path(spec.scratch),
            namespace,
            emit,
        )
    except Unsupported as exc:
        emit("fallback", reason=exc)
    except BaseException as exc:
        emit("error", phase="harness", detail=_exception_line(exc), memory=type(exc) is MemoryError)
    run_ms = (time.perf_counter() - started) * 1000.0
    emit("done", run_ms=run_ms, swept=False, cpu_run=_cpu_ms() - cpu0)
    _wait_for_program_exit(4)


def _wait_for_program_exit(fd: int, limit_s: float = 0.5) -> None:
    """After the verdict: tell the program process to end (EOF on its channel) and wait, briefly,
    until it has (its end closes), so that the fork server rarely needs to sweep the slot's uid."""
    try:
        sock = socket.socket(fileno=fd)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(limit_s)
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _cpu_ms() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1000.0
