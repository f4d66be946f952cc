"""Reward service: extracts code from a completion, runs a problem's tests on it in a sandbox and
returns a `Verdict`. Imports no torch, Ray, vLLM, TRL or PEFT (ARCHITECTURE.md).

Entry points: `reward.score(items)` (in-process, a warm sandboxed executor, no HTTP),
`reward.executor.Executor` (keep one warm yourself), `reward.service.server` (HTTP), `reward.service.client`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlcoder.records import ScoreItem, Verdict


def score(items: Sequence[ScoreItem], workers: int | None = None) -> list[Verdict]:
    """Score items with the process-wide executor (started on first call, closed at exit)."""
    from reward.executor import default_executor

    return default_executor(workers).score(items)


__all__ = ["score"]
