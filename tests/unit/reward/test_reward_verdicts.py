"""From a run's records and end to a verdict; the one reward function applied to those verdicts."""

from __future__ import annotations

import signal

from reward.verdicts import EXIT_SANDBOX_FAILED, RunEnd, summarize, verdict_from_summary
from rlcoder.records import RewardMode, VerdictStatus, reward_from_verdict

EXIT_OK = 0  # wait status of a normal exit with code 0


READY = {"t": "ready"}  # the child entered its sandbox: from here on every end is the program's


def _tests(*outcomes: str) -> list[dict[str, object]]:
    return [READY, {"t": "collected", "total": len(outcomes)}] + [
        {"t": "test", "name": f"t{i}", "outcome": o, "detail": f"t{i}: {o}"} for i, o in enumerate(outcomes)
    ]


def _done(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [*records, {"t": "done", "run_ms": 3.5, "swept": True}]


def test_all_passed_is_pass_with_counts():
    s = summarize(_done(_tests("passed", "passed")), RunEnd(EXIT_OK), "")
    assert (s["status"], s["passed"], s["total"], s["detail"]) == ("pass", 2, 2, "")
    assert s["duration_ms"] == 3.5


def test_assertion_failure_is_fail_and_exception_is_error():
    fail = summarize(_done(_tests("passed", "failed")), RunEnd(EXIT_OK), "")
    assert (fail["status"], fail["passed"], fail["total"]) == ("fail", 1, 2)
    assert fail["detail"] == "t1: failed"
    error = summarize(_done(_tests("failed", "error")), RunEnd(EXIT_OK), "")
    assert error["status"] == "error"


def test_memory_error_wins_over_other_failures():
    s = summarize(_done(_tests("failed", "memory")), RunEnd(EXIT_OK), "")
    assert s["status"] == "memory"


def test_skipped_tests_do_not_count():
    s = summarize(_done(_tests("passed", "skipped")), RunEnd(EXIT_OK), "")
    assert (s["status"], s["passed"], s["total"]) == ("pass", 1, 1)


def test_timeout_keeps_partial_progress():
    records = _tests("passed", "passed", "passed")[:4]  # collected 3, two reported before the kill
    s = summarize(records, RunEnd(-9, timed_out=True, wall_ms=2000.0), "")
    assert (s["status"], s["passed"], s["total"]) == ("timeout", 2, 3)


def test_exit_before_the_tests_finish_is_error():
    s = summarize(_tests("passed"), RunEnd(EXIT_OK), "")
    assert s["status"] == "error" and "exit status 0" in s["detail"]


def test_no_tests_collected_is_error():
    assert summarize(_done([{"t": "collected", "total": 0}]), RunEnd(EXIT_OK), "")["status"] == "error"


def test_collection_error_is_error():
    records = _done([{"t": "error", "phase": "collect", "detail": "ImportError: no f"}])
    s = summarize(records, RunEnd(EXIT_OK), "")
    assert s["status"] == "error" and "ImportError" in s["detail"]


def test_signals_and_sandbox_failures():
    xcpu = summarize([READY], RunEnd(signal.SIGXCPU), "")
    assert xcpu["status"] == "timeout"
    segv = summarize([READY], RunEnd(signal.SIGSEGV), "")
    assert segv["status"] == "error" and "SIGSEGV" in segv["detail"]
    infra = summarize([], RunEnd(EXIT_SANDBOX_FAILED << 8), "")
    assert infra["status"] == "infra_error"


def test_after_ready_every_exit_is_the_programs():
    """os._exit(70) once the program runs is its own failure, not the sandbox's (RELIABILITY.md)."""
    forged = summarize([READY, {"t": "collected", "total": 2}], RunEnd(EXIT_SANDBOX_FAILED << 8), "")
    assert forged["status"] == "error"
    killed = summarize([READY], RunEnd(signal.SIGKILL), "")
    assert killed["status"] == "error"
    before = summarize([], RunEnd(signal.SIGKILL), "")
    assert before["status"] == "infra_error"


def test_the_judge_counts_collected_tests_not_records_seen():
    """A dropped record must not turn 1 of 3 into 1 of 1."""
    records = [READY, {"t": "collected", "total": 3}, {"t": "test", "name": "a", "outcome": "passed"}]
    s = summarize(_done(records), RunEnd(EXIT_OK), "")
    assert (s["status"], s["passed"], s["total"]) == ("error", 1, 3)


def test_malformed_records_are_the_programs_error_not_a_crash():
    records = [
        READY,
        {"t": "collected", "total": "x"},
        {"t": "test", "outcome": "passed"},
        {"t": "done", "run_ms": "y"},
    ]
    s = summarize(records, RunEnd(EXIT_OK), "")
    assert s["status"] == "error"


def test_infra_record_from_the_judge_is_infra_error():
    s = summarize(
        [READY, {"t": "infra", "detail": "the program's sandbox did not start"}], RunEnd(EXIT_OK), ""
    )
    assert s["status"] == "infra_error" and "did not start" in s["detail"]


def test_output_tail_is_bounded():
    s = summarize(_done(_tests("failed")), RunEnd(EXIT_OK), "x" * 100_000)
    assert len(s["output_tail"]) <= 2000


def test_reward_comes_from_the_shared_function():
    fail = verdict_from_summary(summarize(_done(_tests("passed", "failed")), RunEnd(EXIT_OK), ""))
    assert reward_from_verdict(fail) == 0.0
    assert reward_from_verdict(fail, RewardMode.PASS_FRACTION) == 0.5
    infra = verdict_from_summary({"status": "infra_error"})
    assert infra.status is VerdictStatus.INFRA_ERROR and reward_from_verdict(infra) is None


def test_bad_test_is_dropped_like_infra_error_and_keeps_the_judge():
    bad = verdict_from_summary({"status": "bad_test", "detail": "bad test: does not compile"})
    assert bad.status is VerdictStatus.BAD_TEST and reward_from_verdict(bad) is None
    assert reward_from_verdict(bad, RewardMode.PASS_FRACTION) is None
    judged = verdict_from_summary(
        {**summarize(_done(_tests("passed")), RunEnd(EXIT_OK), ""), "judge": "isolated"}
    )
    assert judged.judge == "isolated"
