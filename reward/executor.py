"""The executor: the parent-side handle on a warm fork server. Extracts code, answers from the result
cache or coalesces duplicates in flight, submits the rest, restarts the fork server when it dies
(its in-flight items become infra_error), and shuts it down cleanly. Thread-safe.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import rlcoder.records as records_module
from reward import protocol
from reward.extract import extract_code
from reward.sandbox import isolation
from reward.verdicts import infra_error, verdict_from_summary
from rlcoder.records import ScoreItem, TestKind, Verdict, VerdictStatus

_CACHEABLE = {VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.ERROR, VerdictStatus.MEMORY}
_GRACE_S = 30.0  # beyond an item's own timeout before the executor gives up on the fork server


class Executor:
    """Runs ScoreItems in the sandbox. Use as a context manager, or call start() and close().

    `guard=False` turns off the in-process audit guard (to test the OS layers alone); `hide_dirs=False`
    leaves data directories visible; `preload` names extra packages to import ahead (a speed-up);
    `judge="in_process"` runs tests in the program's process as before the isolated judge."""

    max_code_bytes = 1_000_000  # larger extracted programs get `error` without running
    startup_timeout_s = 120.0

    def __init__(
        self,
        workers: int | None = None,
        *,
        cache_size: int = 4096,
        max_timeout_s: float = 60.0,
        max_memory_mb: int = 4096,
        hide_dirs: bool = True,
        guard: bool = True,
        preload: tuple[str, ...] = (),
        judge: str = "isolated",
    ) -> None:
        self.judge = judge  # "isolated" (the default judge) or "in_process" (the old harness, for benches)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_timeout_s = max_timeout_s
        self.max_memory_mb = max_memory_mb
        self._hide_dirs = hide_dirs
        self._guard = guard
        self._preload = tuple(preload)
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        # job id -> (future, cache key, generation of the fork server it was sent to)
        self._pending: dict[int, tuple[concurrent.futures.Future[dict[str, Any]], str, int]] = {}
        self._generation = 0
        self._inflight: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}  # cache key -> future
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl_w = -1
        self._closed = False
        self._pongs: list[threading.Event] = []
        self.info: dict[str, Any] = {}
        self.stats = {"restarts": 0, "cache_hits": 0, "coalesced": 0, "executions": 0}

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()

    def _spawn(self) -> None:
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        records_root = os.path.dirname(os.path.dirname(os.path.abspath(records_module.__file__)))
        boot = (
            f"import sys; sys.path[:0] = {[here, records_root]!r}; "
            "from reward.sandbox.forkserver import main; sys.exit(main())"
        )
        args = [
            sys.executable,
            "-I",
            "-c",
            boot,
            "--ctl-fd",
            str(ctl_r),
            "--res-fd",
            str(res_w),
            "--workers",
            str(self.workers),
        ]
        args += [] if self._hide_dirs else ["--no-hide"]
        args += [] if self._guard else ["--no-guard"]
        args += ["--preload", ",".join(self._preload)] if self._preload else []
        args += ["--judge", self.judge]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        self._proc = subprocess.Popen(
            args,
            pass_fds=(ctl_r, res_w),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(ctl_r)
        os.close(res_w)
        reader = protocol.Reader(res_r, blocking=True)
        first = self._first_message(reader)
        if first.get("op") != "ready":
            os.close(ctl_w)
            self._proc.wait(timeout=10)
            raise isolation.SandboxUnavailable(
                f"reward sandbox refused to start: {first.get('detail', first)}"
            )
        self._ctl_w = ctl_w
        self.stats["restarts"] += 1 if self._generation else 0
        self._generation += 1
        self.info = {k: first[k] for k in ("pid", "layers", "uid_base", "preloaded", "judge", "zygote_pid")}
        threading.Thread(
            target=self._read_loop,
            args=(reader, self._proc, ctl_w, self._generation),
            daemon=True,
            name="reward-executor-reader",
        ).start()

    def _first_message(self, reader: protocol.Reader) -> dict[str, Any]:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            messages, eof = reader.read()
            if messages:
                return messages[0]
            if eof:
                return {
                    "op": "fatal",
                    "detail": f"fork server exited with {self._proc.wait() if self._proc else '?'}",
                }
        return {"op": "fatal", "detail": "fork server did not become ready in time"}

    def close(self) -> None:
        """Stop the fork server: it kills running children, sweeps and removes its cgroup."""
        with self._lock:
            self._closed = True
            proc, ctl_w = self._proc, self._ctl_w
            self._proc, self._ctl_w = None, -1
        if proc is None:
            return
        try:
            os.close(ctl_w)
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cgroup = self.info.get("layers", {}).get("pids_cgroup")
        if cgroup and os.path.exists(cgroup):
            isolation.remove_cgroup(cgroup)
        isolation.remove_memory_cgroups(self.info.get("layers", {}).get("memory_cgroup", ""))
        self._fail_pending("executor closed")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def in_flight(self) -> int:
        return len(self._pending)

    # ----------------------------------------------------------------------------- scoring
    def score(self, items: Sequence[ScoreItem]) -> list[Verdict]:
        """Verdicts for `items`, in order. Waits as long as the batch can take in the worst case (every
        item hitting its limit, `workers` at a time) plus a grace; past that, infra_error."""
        futures = [self.submit(item) for item in items]
        worst_s = sum(self._limit(item.timeout_s) for item in items) / self.workers + max(
            (self._limit(item.timeout_s) for item in items), default=0.0
        )
        deadline = time.monotonic() + worst_s + _GRACE_S
        return [self._wait(f, item, deadline) for f, item in zip(futures, items, strict=True)]

    def _wait(self, future: concurrent.futures.Future[Verdict], item: ScoreItem, deadline: float) -> Verdict:
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            return infra_error("no answer from the fork server in time", item.item_id)

    def submit(self, item: ScoreItem) -> concurrent.futures.Future[Verdict]:
        """A future Verdict for one item (never raises for bad programs; infra faults -> infra_error)."""
        code = extract_code(item.completion, item.prompt, item.entry_point)
        if code is None:
            return _done(
                Verdict(
                    status=VerdictStatus.NO_CODE, detail="no code in the completion", item_id=item.item_id
                )
            )
        if len(code.encode("utf-8", "replace")) > self.max_code_bytes:
            return _done(
                Verdict(
                    status=VerdictStatus.ERROR,
                    detail=f"code exceeds {self.max_code_bytes} bytes",
                    item_id=item.item_id,
                )
            )
        job = {
            "kind": item.test_kind.value if isinstance(item.test_kind, TestKind) else str(item.test_kind),
            "code": code,
            "test": item.test,
            "entry_point": item.entry_point,
            "timeout_s": self._limit(item.timeout_s),
            "memory_mb": max(16, min(int(item.memory_mb), self.max_memory_mb)),
        }
        key = _cache_key(job)
        raw = self._lookup_or_run(key, job)
        return _map_future(raw, item.item_id, key, self)

    def _limit(self, timeout_s: float) -> float:
        return max(0.05, min(float(timeout_s), self.max_timeout_s))

    def _lookup_or_run(self, key: str, job: dict[str, Any]) -> concurrent.futures.Future[dict[str, Any]]:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
                return _done({**self._cache[key], "_cached": True})
            if key in self._inflight:
                self.stats["coalesced"] += 1
                return self._inflight[key]
            future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
            if self._closed:
                future.set_result({"status": "infra_error", "detail": "executor closed"})
                return future
            job_id = next(self._ids)
            try:
                if not self.alive:
                    self._spawn()
                self._pending[job_id] = (future, key, self._generation)
                self._inflight[key] = future
                protocol.send(self._ctl_w, {"op": "run", "job": {**job, "id": job_id}})
                self.stats["executions"] += 1
            except (OSError, isolation.SandboxUnavailable) as exc:
                self._pending.pop(job_id, None)
                self._inflight.pop(key, None)
                future.set_result({"status": "infra_error", "detail": f"fork server unavailable: {exc}"})
            return future

    def _remember(self, key: str, summary: dict[str, Any]) -> None:
        if VerdictStatus(summary["status"]) not in _CACHEABLE or self._cache_size <= 0:
            return
        with self._lock:
            self._cache[key] = summary
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    # ----------------------------------------------------------------------------- results
    def _read_loop(
        self, reader: protocol.Reader, proc: subprocess.Popen[bytes], ctl_w: int, generation: int
    ) -> None:
        while True:
            try:
                messages, eof = reader.read()
            except (OSError, ValueError):
                messages, eof = [], True
            for msg in messages:
                if msg.get("op") == "result":
                    self._resolve(int(msg["id"]), msg["result"])
                elif msg.get("op") == "pong":
                    self._pong(msg)
            if eof:
                break
        os.close(reader.fd)
        cgroup = ""
        with self._lock:
            if self._proc is proc:  # died under us (not closed): the next submit restarts it
                try:
                    os.close(ctl_w)
                except OSError:
                    pass
                self._proc, self._ctl_w = None, -1
                cgroup = self.info.get("layers", {}).get("pids_cgroup", "")
        self._fail_pending("the fork server died", generation)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if cgroup:
            isolation.remove_cgroup(cgroup)
        isolation.remove_memory_cgroups(self.info.get("layers", {}).get("memory_cgroup", ""))

    def ping(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The fork server's counters (runs, sweeps, fallbacks) and queue; {} if it does not answer."""
        with self._lock:
            if not self.alive:
                return {}
            event = threading.Event()
            self._pongs.append(event)
            protocol.send(self._ctl_w, {"op": "ping"})
        event.wait(timeout_s)
        return getattr(event, "reply", {})

    def _pong(self, msg: dict[str, Any]) -> None:
        with self._lock:
            waiters, self._pongs = self._pongs, []
        for event in waiters:
            event.reply = msg  # type: ignore[attr-defined]
            event.set()

    def _resolve(self, job_id: int, summary: dict[str, Any]) -> None:
        with self._lock:
            entry = self._pending.pop(job_id, None)
            if entry is None:
                return
            future, key, _ = entry
            self._inflight.pop(key, None)
        self._remember(key, summary)
        future.set_result(summary)

    def _fail_pending(self, detail: str, generation: int | None = None) -> None:
        """infra_error for jobs sent to fork server `generation` (None: all of them)."""
        with self._lock:
            ids = [i for i, (_, _, g) in self._pending.items() if generation is None or g == generation]
            pending = [self._pending.pop(i) for i in ids]
            for _, key, _ in pending:
                self._inflight.pop(key, None)
        for future, _, _ in pending:
            if not future.done():
                future.set_result({"status": "infra_error", "detail": detail})


def _cache_key(job: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for part in (
        job["kind"],
        job["code"],
        job["test"],
        job["entry_point"],
        str(job["timeout_s"]),
        str(job["memory_mb"]),
    ):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _done(value: Any) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_result(value)
    return future


def _map_future(
    raw: concurrent.futures.Future[dict[str, Any]], item_id: str, key: str, executor: Executor
) -> concurrent.futures.Future[Verdict]:
    out: concurrent.futures.Future[Verdict] = concurrent.futures.Future()

    def convert(done: concurrent.futures.Future[dict[str, Any]]) -> None:
        summary = done.result()
        out.set_result(verdict_from_summary(summary, item_id=item_id, cached=bool(summary.get("_cached"))))

    raw.add_done_callback(convert)
    return out


_DEFAULT: Executor | None = None
_DEFAULT_LOCK = threading.Lock()


def default_executor(workers: int | None = None) -> Executor:
    """A process-wide executor started on first use (closed at interpreter exit)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = Executor(workers=workers)
            _DEFAULT.start()
            import atexit

            atexit.register(_DEFAULT.close)
        return _DEFAULT
