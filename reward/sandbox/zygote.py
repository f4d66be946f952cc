"""The program zygote of the isolated judge: a warm process forked from the fork server before it
has seen any test, which forks one sandboxed program process per run. Its memory holds no test
source, plan or result-channel secret, so neither can the program's.

The fork server sends one SEQPACKET message per run: a small JSON header and three fds (the
program's end of the judge channel, the output memfd, a memfd with the code).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
from typing import Any

from reward.judge import program
from reward.sandbox import isolation

MAX_HEADER_BYTES = 1 << 16


def start(layers: isolation.Layers, close_fds: tuple[int, ...]) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its pid and the fork server's end of its socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            for fd in close_fds:
                os.close(fd)
            _serve(theirs, layers)
        finally:
            os._exit(0)
    theirs.close()
    return pid, ours


def send_job(sock: socket.socket, header: dict[str, Any], fds: list[int]) -> None:
    socket.send_fds(sock, [json.dumps(header).encode()], fds)


def _serve(sock: socket.socket, layers: isolation.Layers) -> None:
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # program processes are reaped by the kernel
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_HEADER_BYTES, 3)
        except OSError:
            return
        if not data:
            return  # the fork server is gone
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _program_main(json.loads(data), fds, layers)
        for fd in fds:
            os.close(fd)


def _program_main(header: dict[str, Any], fds: list[int], layers: isolation.Layers) -> None:
    """Never returns. Set-up failures end the process before `ready`: the judge reports them as
    the service's; after `ready` every exit is the program's."""
    channel_fd, out_fd, code_fd = fds
    try:
        size = os.fstat(code_fd).st_size
        code = os.pread(code_fd, size, 0).decode("utf-8", "replace")
        os.close(code_fd)
        limits = isolation.ChildLimits(**header["limits"])
        scratch = header["scratch"]
        fd = isolation.enter_child(header["uid"], limits, scratch, out_fd, channel_fd, layers)
        path = os.path.join(scratch, "solution.py")
        _prepare(scratch, path, code)
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
