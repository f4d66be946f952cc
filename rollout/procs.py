"""Process bookkeeping so the fleet leaves no orphan engine process: list a worker's children, and
end processes by pid only when they are still the very process that was recorded (Linux /proc)."""

from __future__ import annotations

import os
import signal
import time


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command name may hold spaces and parentheses: the fields after the last ")" are fixed
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_identity(pid: int) -> str:
    """pid plus its start time: the same string only for the same process (pids get reused)."""
    fields = _stat_fields(pid)
    return f"{pid}:{fields[19]}" if fields else ""


def alive(pid: int, identity: str) -> bool:
    """Whether the recorded process still runs (a zombie counts as gone: it only awaits reaping)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return False
    return not identity or f"{pid}:{fields[19]}" == identity


def child_pids(pid: int) -> list[int]:
    """Every descendant of `pid`."""
    children: dict[int, list[int]] = {}
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        fields = _stat_fields(entry)
        if fields:
            children.setdefault(int(fields[1]), []).append(entry)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def with_descendants(procs: dict[int, str]) -> list[tuple[int, str]]:
    """(pid, identity) of the given processes (identity "" = look it up now) and all their
    descendants; processes already gone are left out."""
    found = dict(procs)
    for pid in procs:
        for child in child_pids(pid):
            found.setdefault(child, "")
    known = [(pid, ident or proc_identity(pid)) for pid, ident in found.items()]
    return [(pid, ident) for pid, ident in known if ident]


def reap(procs: list[tuple[int, str]], grace_s: float) -> list[int]:
    """Wait up to `grace_s` for the recorded processes to end, SIGKILL those still running, and return
    the pids that survived even that (should be none)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p, ident) for p, ident in procs):
        time.sleep(0.1)
    for pid, ident in procs:
        if alive(pid, ident):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(alive(p, ident) for p, ident in procs):
        time.sleep(0.05)
    return [p for p, ident in procs if alive(p, ident)]
