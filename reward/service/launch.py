"""Start the reward service as a subprocess (`python -m reward --port 0`), wait until it answers
/healthz, expose its URL, and on exit end exactly that process group: for the training job and tests.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

import httpx

from reward.service.server import LISTEN_LINE


class RewardServiceError(RuntimeError):
    """The service did not come up (its last output lines are in the message)."""


class RewardService:
    """`with RewardService(workers=2) as svc: RewardClient(svc.url)...`"""

    def __init__(
        self,
        workers: int | None = None,
        queue_limit: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._args = ["--host", host, "--port", str(port)]
        self._args += ["--workers", str(workers)] if workers else []
        self._args += ["--queue-limit", str(queue_limit)] if queue_limit else []
        self._args += list(extra_args)
        self._startup_timeout_s = startup_timeout_s
        self._env = env
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: list[str] = []
        self.url = ""

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc else -1

    def __enter__(self) -> RewardService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        env = dict(os.environ if self._env is None else self._env)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "reward", *self._args, "--parent-pid", str(os.getpid())],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: stop() ends exactly that group
        )
        assert self._proc.stdout is not None
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        try:
            self.url = self._wait_for_url()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                if self._proc is not None and self._proc.poll() is not None:
                    break
                continue
            if line is None:
                break
            self._tail = [*self._tail, line][-20:]
            if line.startswith(LISTEN_LINE):
                return line[len(LISTEN_LINE) :].strip()
        raise RewardServiceError("reward service did not start:\n" + "".join(self._tail))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RewardServiceError(f"reward service at {self.url} never became healthy")

    def kill(self) -> None:
        """SIGKILL the service's process group (fault injection in tests)."""
        self._signal_group(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the service's process group, then SIGKILL whatever is left of it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)
        self._proc.wait()

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _pump(stream: IO[str], lines: queue.Queue[Any]) -> None:
    """Keep reading the service's output so it never blocks on a full pipe."""
    for line in stream:
        lines.put(line)
    lines.put(None)
