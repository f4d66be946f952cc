"""The program zygote of the isolated judge: a warm process forked from the fork server before it
has seen any test, which forks one sandboxed program process per run. Its memory holds no test
source, plan or result-channel secret, so neither can the program's.

The fork server sends one SEQPACKET message per run: a small JSON header and three fds (the
program's end of the judge channel, the output memfd, a memfd with the code).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from reward.judge import program
from reward.sandbox import guard, isolation

MAX_HEADER_BYTES = 1 << 16


def start(
    layers: isolation.Layers, close_fds: tuple[int, ...], arm: Callable[[guard.GuardConfig], None] | None
) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its pid and the fork server's end of its socket. `arm` (None: no
    guard) arms the audit guard in each program process, for processes, sockets and ctypes only."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            for fd in close_fds:
                os.close(fd)
            _serve(theirs, layers, arm)
        finally:
            os._exit(0)
    theirs.close()
    return pid, ours


def send_job(sock: socket.socket, header: dict[str, Any], fds: list[int]) -> None:
    socket.send_fds(sock, [json.dumps(header).encode()], fds)


def _serve(sock: socket.socket, layers: isolation.Layers, arm: Any) -> None:
    """Fork a program process per job; report each one's pid and, once reaped, its end."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    tokens: dict[int, int] = {}
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is wake_r:
                drain(wake_r)
            elif not _start_one(sock, layers, arm, tokens, (wake_r, wake_w)):
                return  # the fork server is gone
        while tokens:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            token = tokens.pop(pid, None)
            if token is not None:
                sock.send(json.dumps({"token": token, "exited": True}).encode())


def _start_one(
    sock: socket.socket, layers: isolation.Layers, arm: Any, tokens: dict[int, int], wake: Any
) -> bool:
    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_HEADER_BYTES, 3)
    except OSError:
        return False
    if not data:
        return False
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return True
    header = json.loads(data)
    pid = os.fork()
    if pid == 0:
        sock.close()
        for fd in wake:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _program_main(header, fds, layers, arm)
    for fd in fds:
        os.close(fd)
    tokens[pid] = header["token"]
    sock.send(json.dumps({"token": header["token"], "pid": pid}).encode())
    return True


def drain(fd: int) -> None:
    """Empty a non-blocking wake-up pipe (the fork server's too)."""
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _program_main(header: dict[str, Any], fds: list[int], layers: isolation.Layers, arm: Any) -> None:
    """Never returns. Set-up failures end the process before `ready`: the judge reports them as
    the service's; after `ready` every exit is the program's."""
    channel_fd, out_fd, code_fd = fds
    try:
        size = os.fstat(code_fd).st_size
        code = os.pread(code_fd, size, 0).decode("utf-8", "replace")
        os.close(code_fd)
        limits = isolation.ChildLimits(**header["limits"])
        scratch = header["scratch"]
        if header.get("memory_cgroup"):
            isolation.join_memory_cgroup(header["memory_cgroup"])
        if layers.mountns and not isolation.private_tmp(scratch):
            raise isolation.SandboxUnavailable("no private /tmp for the run")
        fd = isolation.enter_child(header["uid"], limits, scratch, out_fd, channel_fd, layers)
        path = os.path.join(scratch, "solution.py")
        _prepare(scratch, path, code)
        if arm is not None:
            arm(
                guard.GuardConfig(
                    solution_files={path, program.CALLBACK_FILENAME},
                    trusted_files=frozenset(),
                    block_sockets=True,
                    protect_frames=False,
                )
            )
    except BaseException:
        os._exit(1)
    try:
        program.serve(fd, code, path)
    finally:
        os._exit(0)


def _prepare(scratch: str, path: str, code: str) -> None:
    os.environ.clear()
    os.environ.update(
        {"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    )
    tempfile.tempdir = scratch
    sys.dont_write_bytecode = True
    sys.argv = ["solution.py"]
    sys.path[:0] = [scratch]
    os.umask(0o002)
    with open(path, "w", encoding="utf-8", errors="replace") as f:
        f.write(code)
    import random

    random.seed()
