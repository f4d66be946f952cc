"""One sandboxed run in the fork server, from fork to cleanup: start the child, read its result
channel, enforce the wall-clock limit, reap it, sweep its uid, answer, clean its files, free its slot.
State lives in a `ServerState` that only the fork server's frames hold.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from reward import protocol
from reward.harness.testplan import TestPlan
from reward.judge.runner import JUDGE_DIR_SUFFIX
from reward.sandbox import isolation, tamper, zygote
from reward.sandbox.child import ChildSpec, child_main
from reward.sandbox.judge_child import judge_main
from reward.verdicts import RunEnd, summarize

SCRATCH_ROOT = "/tmp/rlsbx"
RESULT_CAP_BYTES = 4 << 20
OUTPUT_READ_BYTES = 4096
# Where a run goes when its judge cannot serve the test: the isolated judge falls back to the
# in-process harness, whose fast path falls back to real pytest (both in the program's process).
FALLBACK = {
    "iso_fast": "fast",
    "iso_pytest": "pytest",
    "iso_check": "check",
    "iso_stdio": "stdio",
    "fast": "pytest",
}
JUDGES = {"iso_fast": "isolated", "iso_pytest": "isolated", "iso_check": "isolated", "iso_stdio": "isolated"}
JUDGES["pytest"] = "pytest"


@dataclass
class Run:
    """One child in flight."""

    job: dict[str, Any]
    mode: str
    slot: int
    uid: int
    pid: int
    nonce: str
    result_r: int
    out_fd: int
    scratch: str
    deadline: float
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    wait_status: int | None = None
    timed_out: bool = False
    flooded: bool = False
    sweeping: int = 0  # pid of the sweep helper, 0 when none
    sweeps: int = 0
    replied: bool = False  # the verdict was sent on the `done` record, before the process was reaped
    token: int = 0  # the run's number, as the zygote reports its program process
    program_pid: int = 0  # isolated judge: the program process (a child of the zygote)
    program_exited: bool = True  # isolated judge: False until the zygote reported its exit
    memory_cgroup: str = ""  # the slot's memory cgroup ("" = none)
    oom_kills_before: int = 0


@dataclass
class ServerState:
    arm: Any
    layers: isolation.Layers
    trusted_files: frozenset[str]
    trusted_types: frozenset[type]
    workers: int
    nproc: int
    guard_enabled: bool
    res_fd: int
    snapshot: tamper.Snapshot
    queue: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    runs: dict[int, Run] = field(default_factory=dict)  # by child pid
    helpers: dict[int, Run] = field(default_factory=dict)  # sweep helper pid -> its run
    free_slots: list[int] = field(default_factory=list)
    plans: collections.OrderedDict[tuple[str, str], TestPlan] = field(default_factory=collections.OrderedDict)
    seq: int = 0
    counters: collections.Counter[str] = field(default_factory=collections.Counter)
    cancelled: set[int] = field(default_factory=set)
    zygote: Any = None  # socket to the program zygote (isolated judge), None when it is not running
    zygote_pid: int = 0
    programs: dict[int, Run] = field(default_factory=dict)  # token -> run whose program process lives
    decide: list[Run] = field(default_factory=list)  # runs whose program process just ended


def start_run(
    state: ServerState, sel: selectors.BaseSelector, job: dict[str, Any], plan: TestPlan, mode: str
) -> None:
    slot = state.free_slots.pop()
    uid = isolation.sandbox_uid(os.getpid(), slot) if state.layers.uid_drop else os.getuid()
    state.seq += 1
    scratch = os.path.join(SCRATCH_ROOT, f"{slot}-{state.seq}")
    os.mkdir(scratch, 0o700)
    if state.layers.uid_drop:
        os.chown(scratch, uid, uid)
    out_fd = os.memfd_create("out", 0)
    result_r, result_w = os.pipe()
    timeout_s = float(job["timeout_s"])
    memory_cgroup = (
        isolation.memory_slot(state.layers.memory_cgroup, slot) if state.layers.memory_cgroup else ""
    )
    oom_before = (
        isolation.set_memory_limit(
            memory_cgroup, int(job["memory_mb"]) * (1 << 20) + isolation.MEMORY_SLACK_BYTES
        )
        if memory_cgroup
        else 0
    )
    spec = ChildSpec(
        mode=mode,
        plan=plan,
        test_source=job["test"],
        code=job["code"],
        entry_point=job.get("entry_point", ""),
        scratch=scratch,
        uid=uid,
        limits=isolation.ChildLimits(cpu_s=int(timeout_s) + 1, address_space_bytes=_address_space(job)),
        out_fd=out_fd,
        result_fd=result_w,
        nonce=secrets.token_hex(16),
        layers=state.layers,
        trusted_files=state.trusted_files,
        trusted_types=state.trusted_types,
        guard_enabled=state.guard_enabled,
        snapshot=state.snapshot,
        memory_cgroup=memory_cgroup,
    )
    started = time.monotonic()
    if mode.startswith("iso_"):
        pid = _start_isolated(state, spec, slot, result_r, state.seq)
    else:
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            child_main(spec, state.arm)
    job["_t_forked"] = time.monotonic()
    os.close(result_w)
    os.set_blocking(result_r, False)
    run = Run(job, mode, slot, uid, pid, spec.nonce, result_r, out_fd, scratch, started + timeout_s, started)
    run.memory_cgroup, run.oom_kills_before = spec.memory_cgroup, oom_before
    if mode.startswith("iso_"):
        run.token, run.program_exited = state.seq, False
        state.programs[run.token] = run
    state.runs[pid] = run
    state.counters["runs"] += 1
    state.counters[f"mode_{mode}"] += 1
    sel.register(result_r, selectors.EVENT_READ, run)


def _start_isolated(state: ServerState, spec: ChildSpec, slot: int, result_r: int, token: int) -> int:
    """The program process (from the zygote, which never saw a test) and the judge (forked here),
    joined by a socketpair; the scratch dir is the program's, shared with the judge by group."""
    judge_end, program_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    code_fd = os.memfd_create("code", 0)
    os.write(code_fd, spec.code.encode("utf-8", "surrogatepass"))
    program_uid = spec.uid
    judge_dir = spec.scratch + JUDGE_DIR_SUFFIX
    os.mkdir(judge_dir, 0o700)
    if state.layers.uid_drop:
        os.chmod(spec.scratch, 0o770)
        spec.uid = isolation.judge_uid(os.getpid(), slot)
        os.chown(judge_dir, spec.uid, spec.uid)
    header = {
        "uid": program_uid,
        "scratch": spec.scratch,
        "limits": dataclasses.asdict(spec.limits),
        "token": token,
        "memory_cgroup": spec.memory_cgroup,
    }
    zygote.send_job(state.zygote, header, [program_end.fileno(), spec.out_fd, code_fd])
    program_end.close()
    os.close(code_fd)
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        judge_main(spec, judge_end.fileno(), program_uid)
    judge_end.close()
    return pid


def _address_space(job: dict[str, Any], _base: list[int] = []) -> int:  # noqa: B006 (a cache)
    """The interpreter's own mappings plus the job's memory budget."""
    if not _base:
        with open("/proc/self/statm") as f:
            _base.append(int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE"))
    return _base[0] + int(job["memory_mb"]) * (1 << 20)


def read_result(state: ServerState, run: Run, sel: selectors.BaseSelector) -> None:
    try:
        while True:
            chunk = os.read(run.result_r, 65536)
            if not chunk:
                sel.unregister(run.result_r)
                break
            run.buffer += chunk
            if len(run.buffer) > RESULT_CAP_BYTES:
                run.flooded = True
                sel.unregister(run.result_r)
                kill(state, run, timed_out=False)
                return
    except BlockingIOError:
        pass
    if not run.replied and b'{"t":"done"' in run.buffer:
        _reply_early(state, run)


def _reply_early(state: ServerState, run: Run) -> None:
    """The harness's authenticated `done` record makes the verdict final: answer now, and let the
    process teardown, the sweep and the cleanup of the slot happen after (off the latency path)."""
    records = _records(run)
    if not any(r.get("t") == "done" for r in records) or any(r.get("t") == "fallback" for r in records):
        return
    if run.job["id"] in state.cancelled or run.timed_out:
        return
    end = RunEnd(None, False, False, (time.monotonic() - run.started) * 1000.0)
    send_result(state, run.job, _summary(run, records, end))
    run.replied = True


def _summary(run: Run, records: list[dict[str, Any]], end: RunEnd) -> dict[str, Any]:
    summary = summarize(records, end, _output_tail(run.out_fd))
    if (
        run.memory_cgroup
        and summary["status"] not in ("pass", "infra_error", "timeout")
        and isolation.memory_oom_kills(run.memory_cgroup) > run.oom_kills_before
    ):
        summary["status"], summary["detail"] = "memory", "memory limit hit (the run's memory cgroup)"
    summary["mode"] = run.mode
    summary["judge"] = JUDGES.get(run.mode, "in_process")
    t0 = run.job.get("_t_recv", run.started)
    summary["debug"]["timeline_ms"] = {
        "queued": round((run.started - t0) * 1000, 2),
        "fork": round((run.job.get("_t_forked", run.started) - run.started) * 1000, 2),
        "child": round(end.wall_ms, 2),
    }
    return summary


def reap(state: ServerState, sel: selectors.BaseSelector) -> None:
    """Reap every exited process, then decide about the runs that ended (after the zombies of a
    killed group are gone, so the cgroup count is not inflated by them)."""
    ended: list[Run] = []
    swept: list[Run] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in state.runs:
            run = state.runs[pid]
            run.wait_status = status
            if _registered(sel, run.result_r):
                read_result(state, run, sel)
            try:
                os.killpg(run.pid, signal.SIGKILL)  # whatever is left of its process group
            except OSError:
                pass
            ended.append(run)
        elif pid in state.helpers:
            run = state.helpers.pop(pid)
            run.sweeping = 0
            run.sweeps += 1
            swept.append(run)
        # anything else is an orphan we adopted as subreaper: reaped, nothing more to do
    for run in ended:
        if not run.program_exited and run.program_pid:
            _kill_quietly(run.program_pid)  # the judge is gone: so is the program's turn
    _decide(state, sel, [*ended, *swept])


def _decide(state: ServerState, sel: selectors.BaseSelector, runs: list[Run]) -> None:
    """Sweep the slot's uid again or finish the run, once its judge and its program have ended."""
    decide, state.decide = [*runs, *state.decide], []
    for run in decide:
        if run.wait_status is None or not run.program_exited or run.sweeping:
            continue  # the judge or the program process is still running: decide when both ended
        if run.sweeps < 10 and _needs_sweep(state, run):
            _start_sweep(state, run)
        else:
            _finish(state, run, sel)


def read_zygote(state: ServerState) -> None:
    """The zygote's reports: a program process started (its pid) or ended."""
    while True:
        try:
            data = state.zygote.recv(4096, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            raise RuntimeError("the program zygote is gone")
        report = json.loads(data)
        run = state.programs.get(report.get("token"))
        if run is None:
            continue
        if "pid" in report:
            run.program_pid = int(report["pid"])
            if run.wait_status is not None or run.timed_out:
                _kill_quietly(run.program_pid)
        else:
            del state.programs[run.token]
            run.program_exited = True
            state.decide.append(run)


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _registered(sel: selectors.BaseSelector, fd: int) -> bool:
    try:
        sel.get_key(fd)
    except KeyError:
        return False
    return True


def _needs_sweep(state: ServerState, run: Run) -> bool:
    """Could processes of this run's uid still exist? Exact with the pids cgroup (every task of the
    server is counted), otherwise trusted from the child's own final sweep."""
    if not state.layers.uid_drop:
        return False  # no per-slot uid: the process group kill is all we have
    if state.layers.pids_cgroup:
        alive = sum(1 for r in state.runs.values() if r.wait_status is None) + len(state.helpers)
        alive += (1 if state.zygote_pid else 0) + len(state.programs)
        return isolation.cgroup_task_count(state.layers.pids_cgroup) > 1 + alive
    if run.mode.startswith("iso_"):
        return run.sweeps == 0  # the judge cannot sweep the program's uid itself: once, always
    done = next((r for r in _records(run) if r.get("t") == "done"), None)
    return done is None or not done.get("swept")


def _start_sweep(state: ServerState, run: Run) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            isolation.sweep_uid(run.uid)
        finally:
            os._exit(0)
    run.sweeping = pid
    state.helpers[pid] = run
    state.counters["sweeps"] += 1


def kill(state: ServerState, run: Run, timed_out: bool) -> None:
    if run.wait_status is not None:
        return
    run.timed_out = run.timed_out or timed_out
    for target in (lambda: os.killpg(run.pid, signal.SIGKILL), lambda: os.kill(run.pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
    if run.program_pid and not run.program_exited:  # after the judge: it must not see the program
        _kill_quietly(run.program_pid)  # end first and report that as the program's error


def enforce_deadlines(state: ServerState) -> None:
    now = time.monotonic()
    for run in list(state.runs.values()):
        if run.wait_status is None and not run.timed_out and now >= run.deadline:
            kill(state, run, timed_out=True)


def _finish(state: ServerState, run: Run, sel: selectors.BaseSelector) -> None:
    """Everything of the run is dead: clean its files, answer (unless done already), free the slot."""
    if run.pid not in state.runs:
        return
    del state.runs[run.pid]
    if _registered(sel, run.result_r):
        sel.unregister(run.result_r)
    os.close(run.result_r)
    if not run.replied:
        _answer(state, run)
    os.close(run.out_fd)
    shutil.rmtree(run.scratch, ignore_errors=True)
    shutil.rmtree(run.scratch + JUDGE_DIR_SUFFIX, ignore_errors=True)
    if state.layers.uid_drop:
        isolation.remove_owned(run.uid)
        if run.mode.startswith("iso_"):
            isolation.remove_owned(isolation.judge_uid(os.getpid(), run.slot))
    state.free_slots.append(run.slot)


def _answer(state: ServerState, run: Run) -> None:
    records = _records(run)
    fallback = any(r.get("t") == "fallback" for r in records) and not run.timed_out
    if fallback and run.mode in FALLBACK:
        state.queue.appendleft({**run.job, "mode": FALLBACK[run.mode]})
        state.counters["fallbacks"] += 1
        return
    if run.job["id"] in state.cancelled:
        state.cancelled.discard(run.job["id"])
        send_result(state, run.job, {"status": "infra_error", "detail": "cancelled"})
        return
    end = RunEnd(run.wait_status, run.timed_out, run.flooded, (time.monotonic() - run.started) * 1000.0)
    send_result(state, run.job, _summary(run, records, end))


def _records(run: Run) -> list[dict[str, Any]]:
    return protocol.parse_records(bytes(run.buffer), run.nonce)


def _output_tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    data = os.pread(fd, OUTPUT_READ_BYTES, max(0, size - OUTPUT_READ_BYTES))
    return data.decode("utf-8", "replace")


def send_result(state: ServerState, job: dict[str, Any], summary: dict[str, Any]) -> None:
    try:
        protocol.send(state.res_fd, {"op": "result", "id": job["id"], "result": summary})
    except OSError:  # the executor is gone: keep cleaning up, nobody is waiting for the answer
        pass
