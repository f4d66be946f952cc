"""Turn what a sandboxed run left behind (the harness's authenticated records, how the process ended,
whether we killed it) into a verdict summary. Pure: the fork server calls it, tests feed it by hand.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

from rlcoder.records import Verdict, VerdictStatus

OUTPUT_TAIL_CHARS = 2000
EXIT_SANDBOX_FAILED = 70  # the child could not enter the sandbox (it never sent `ready`)


@dataclass
class RunEnd:
    """How a child ended, as the fork server saw it."""

    wait_status: int | None  # os.waitpid status; None if never reaped (should not happen)
    timed_out: bool = False  # we killed it at the wall-clock deadline
    flooded: bool = False  # we killed it for writing too much to the result channel
    wall_ms: float = 0.0


def summarize(records: list[dict[str, Any]], end: RunEnd, output: str) -> dict[str, Any]:
    """A dict with Verdict's fields (status as its string value) for one run.

    The judge's count decides: total is what was collected, and a collected test without an outcome
    record (dropped, never run) is not a pass. A record with a malformed field makes the run `error`
    (only the program can have written it), never an exception here."""
    records = [r for r in records if isinstance(r, dict)]
    tests = [r for r in records if r.get("t") == "test"]
    counted = [r for r in tests if r.get("outcome") != "skipped"]
    passed = sum(1 for r in counted if r.get("outcome") == "passed")
    collected = next((_int(r.get("total")) for r in records if r.get("t") == "collected"), None)
    skipped = len(tests) - len(counted)
    done = next((r for r in records if r.get("t") == "done"), None)
    errors = [r for r in records if r.get("t") in ("error", "abort")]
    if collected is not None and collected < 0:
        errors.append({"detail": "malformed record on the result channel"})
    total = max((collected or 0) - skipped, len(counted))
    if done is not None and collected is not None and len(tests) < collected:
        errors.append({"detail": f"{collected - len(tests)} collected tests reported no outcome"})
    run_ms = _float(done.get("run_ms"), end.wall_ms) if done is not None else end.wall_ms
    failures = [r for r in counted if r.get("outcome") != "passed"]
    infra = next((r for r in records if r.get("t") == "infra"), None)
    if infra is not None:
        status, detail = VerdictStatus.INFRA_ERROR, str(infra.get("detail", "sandbox set-up failed"))
    elif not any(r.get("t") == "ready" for r in records) and done is None and not end.timed_out:
        status, detail = VerdictStatus.INFRA_ERROR, "the sandboxed process failed before the program started"
    else:
        status, detail = _status(done, errors, failures, end, total, output)
    if status == VerdictStatus.PASS:
        detail = ""
    tail = _tail(failures, errors, output)
    return {
        "status": status.value,
        "passed": passed,
        "total": total,
        "duration_ms": round(run_ms, 3),
        "output_tail": tail,
        "detail": detail[:500],
        "debug": {k: v for k, v in (done or {}).items() if k.startswith(("cpu_", "flt_"))},
    }


def _status(
    done: dict[str, Any] | None,
    errors: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    end: RunEnd,
    total: int,
    output: str,
) -> tuple[VerdictStatus, str]:
    first = str(failures[0].get("detail", "")) if failures else ""
    if end.timed_out:
        return VerdictStatus.TIMEOUT, f"wall-clock limit hit after {end.wall_ms:.0f} ms"
    if any(r.get("outcome") == "memory" for r in failures) or any(r.get("memory") for r in errors):
        return VerdictStatus.MEMORY, first or "MemoryError"
    if errors:
        return VerdictStatus.ERROR, str(errors[0].get("detail", "error"))
    if done is None:
        return _abnormal_end(end, output, first)
    if failures:
        if any(r.get("outcome") != "failed" for r in failures):
            return VerdictStatus.ERROR, first
        return VerdictStatus.FAIL, first
    if total == 0:
        return VerdictStatus.ERROR, "no tests were collected"
    return VerdictStatus.PASS, ""


def _abnormal_end(end: RunEnd, output: str, first: str) -> tuple[VerdictStatus, str]:
    """The harness never reported completion: the program exited, crashed or was killed early."""
    status = end.wait_status
    if end.flooded:
        return VerdictStatus.ERROR, "the program flooded the result channel"
    if status is None:
        return VerdictStatus.INFRA_ERROR, "sandboxed process was never reaped"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU,):
            return VerdictStatus.TIMEOUT, "CPU time limit hit"
        if "MemoryError" in output or "Cannot allocate memory" in output:
            return VerdictStatus.MEMORY, f"killed by {signal.Signals(sig).name} after a memory error"
        return VerdictStatus.ERROR, f"killed by signal {_signame(sig)}" + (f"; {first}" if first else "")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return (
        VerdictStatus.ERROR,
        f"the program ended the process (exit status {code}) before the tests finished",
    )


def _int(value: Any) -> int:
    return value if type(value) is int else -1


def _float(value: Any, default: float) -> float:
    return float(value) if type(value) in (int, float) else default


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _tail(failures: list[dict[str, Any]], errors: list[dict[str, Any]], output: str) -> str:
    lines = [str(r.get("detail", "")) for r in (*errors, *failures[:5]) if r.get("detail")]
    text = "\n".join(lines)
    if output:
        text = (text + "\n--- output ---\n" if text else "") + output
    return text[-OUTPUT_TAIL_CHARS:]


def verdict_from_summary(summary: dict[str, Any], item_id: str = "", cached: bool = False) -> Verdict:
    return Verdict(
        status=VerdictStatus(summary["status"]),
        passed=int(summary.get("passed", 0)),
        total=int(summary.get("total", 0)),
        duration_ms=float(summary.get("duration_ms", 0.0)),
        output_tail=str(summary.get("output_tail", "")),
        detail=str(summary.get("detail", "")),
        item_id=item_id,
        cached=cached,
        judge=str(summary.get("judge", "")),
    )


def infra_error(detail: str, item_id: str = "") -> Verdict:
    return Verdict(status=VerdictStatus.INFRA_ERROR, detail=detail[:500], item_id=item_id)
