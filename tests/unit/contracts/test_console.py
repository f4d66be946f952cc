"""The console: ETA and durations, the SFT and RL progress lines, the quiet console's switches and
errors as one line."""

from __future__ import annotations

import os
import warnings

from rlcoder.console import (
    QUIET_ENV,
    VERBOSE_ENV,
    duration,
    eta,
    is_verbose,
    one_line_error,
    progress_line,
    quiet_console,
    sft_progress_line,
)


def test_duration_and_eta():
    assert [duration(s) for s in (0, 42.4, 185, 7620)] == ["0s", "42s", "3m05s", "2h07m"]
    assert eta(10.0, 2, 10) == "eta 40s"  # 5 s per step, 8 steps left
    assert eta(0.0, 0, 10) == "" and eta(50.0, 10, 10) == ""


def test_progress_lines_carry_the_eta():
    line = sft_progress_line(1, 2, 8, 40, 3.25, 1e-3, 16.0)
    assert line == "sft stage 1/2 step 8/40 loss 3.2500 lr 1.00e-03 16s, eta 1m04s"
    row = {"step": 2, "pass_rate": 0.5, "rollout_tokens_per_s": 10.0, "time/rollout_s": 1.0}
    assert progress_line("grpo", row, 10, "eta 1m").endswith("| rollout 1.0s | eta 1m")
    assert "eta" not in progress_line("grpo", row, 10)


def test_quiet_console_sets_its_switches_and_verbose_does_not(monkeypatch):
    for key in (*QUIET_ENV, VERBOSE_ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")  # a user's own setting wins
    with warnings.catch_warnings():
        quiet_console(verbose=False)
        assert not is_verbose()
        assert os.environ["TRL_EXPERIMENTAL_SILENCE"] == "1"
        assert os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"
        assert "ignore::FutureWarning" in os.environ["PYTHONWARNINGS"]
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn("TRL currently supports vLLM versions from 0.22.0 to 0.31.0.", UserWarning, 1)
            warnings.warn("something else", UserWarning, 1)
        assert [str(w.message) for w in seen] == ["something else"]
    for key in QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    quiet_console(verbose=True)
    assert is_verbose()
    assert "TRL_EXPERIMENTAL_SILENCE" not in os.environ


def test_one_line_error():
    in_use = OSError(98, "Address already in use")
    assert one_line_error(in_use) == "OSError: [Errno 98] Address already in use"
    assert one_line_error(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert one_line_error(StopIteration()) == "StopIteration"
