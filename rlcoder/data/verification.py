"""Problems in the sandbox: the one ScoreItem builder (a completion, a rollout or the reference solution
against a problem's tests, or only its public tests) and self-verification (every reference solution
must pass its own tests, every time; its runtime is kept for `reward.timeout_s: auto`). The reward
sandbox is imported only where it runs."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rlcoder.config import RewardSection
from rlcoder.records import Problem, Rollout, ScoreItem, Verdict, VerdictStatus


@dataclass
class Rejection:
    problem_id: str
    verdicts: list[Verdict]  # one per repeat

    @property
    def reason(self) -> str:
        bad = next((v for v in self.verdicts if v.status is not VerdictStatus.PASS), self.verdicts[0])
        passes = sum(v.status is VerdictStatus.PASS for v in self.verdicts)
        return f"{bad.status.value} ({passes}/{len(self.verdicts)} passes): {bad.detail}"


@dataclass
class VerifyReport:
    repeats: int
    kept: list[Problem] = field(default_factory=list)  # passed every repeat
    rejected: list[Rejection] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def total(self) -> int:
        return len(self.kept) + len(self.rejected)

    def status_counts(self) -> dict[str, int]:
        """How many verdicts (over all repeats) had each status."""
        counts = {"pass": len(self.kept) * self.repeats}
        for rejection in self.rejected:
            for v in rejection.verdicts:
                counts[v.status.value] = counts.get(v.status.value, 0) + 1
        return counts


def completion_item(
    problem: Problem,
    completion: str,
    *,
    item_id: str = "",
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    public: bool = False,
) -> ScoreItem:
    """The ScoreItem that scores `completion` against the problem's tests (only its public tests, the
    source of multi-turn feedback, with `public`).

    For `complete` problems the question (signature, docstring and any imports it has) goes along
    as the code the completion continues, so a body-only answer or one that dropped the question's
    imports still runs.
    """
    if public and not problem.public_test:
        raise ValueError(
            f"{problem.problem_id}: no public tests (rlcoder.data.public_tests.with_public_tests)"
        )
    return ScoreItem(
        completion=completion,
        test=problem.public_test if public else problem.test,
        test_kind=problem.test_kind,
        entry_point=problem.entry_point,
        prompt=problem.question if problem.style == "complete" else "",
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        item_id=item_id or problem.problem_id,
    )


def rollout_item(problem: Problem, rollout: Rollout, reward: RewardSection) -> ScoreItem:
    """A rollout's completion against the problem's tests, under the run's reward limits."""
    return completion_item(
        problem,
        rollout.completion_text,
        item_id=rollout.rollout_id,
        timeout_s=reward.limit_s(problem.reference_runtime_s),
        memory_mb=reward.memory_mb,
    )


def reference_item(problem: Problem, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> ScoreItem:
    """The reference solution as a model would answer: one fenced block, scored the way rollouts are."""
    fenced = f"```python\n{problem.solution.rstrip()}\n```\n"
    return completion_item(problem, fenced, timeout_s=timeout_s, memory_mb=memory_mb)


# synchronous, unlike rlcoder.seams.Scorer (the async reward-service client the learners use)
SyncScorer = Callable[[list[ScoreItem]], list[Verdict]]


def verify_problems(
    problems: Sequence[Problem],
    repeats: int = 3,
    workers: int | None = None,
    *,
    timeout_s: float = 10.0,
    chunk_size: int = 32,
    progress: Callable[[int], None] | None = None,
    scorer: SyncScorer | None = None,
) -> VerifyReport:
    """Score each reference solution against its tests `repeats` times; keep only all-PASS problems.

    `progress(n)` is called with the number of problems finished after each chunk. `scorer` defaults
    to the reward sandbox (`reward.score`).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if scorer is None:
        from reward import score

        def scorer(items: list[ScoreItem]) -> list[Verdict]:
            return score(items, workers=workers)

    started = time.monotonic()
    report = VerifyReport(repeats=repeats)
    for start in range(0, len(problems), chunk_size):
        chunk = problems[start : start + chunk_size]
        items = [reference_item(p, timeout_s=timeout_s) for _ in range(repeats) for p in chunk]
        verdicts = scorer(items)
        if len(verdicts) != len(items):
            raise RuntimeError(f"scorer returned {len(verdicts)} verdicts for {len(items)} items")
        for i, problem in enumerate(chunk):
            mine = [verdicts[r * len(chunk) + i] for r in range(repeats)]
            if all(v.status is VerdictStatus.PASS for v in mine):
                runtime_s = max(v.duration_ms for v in mine) / 1000.0  # what `reward.timeout_s: auto` scales
                report.kept.append(dataclasses.replace(problem, reference_runtime_s=runtime_s))
            else:
                report.rejected.append(Rejection(problem.problem_id, mine))
        if progress is not None:
            progress(len(chunk))
    report.duration_s = time.monotonic() - started
    return report


def with_reference_runtimes(
    problems: Sequence[Problem], scorer: SyncScorer, timeout_s: float = 10.0
) -> tuple[list[Problem], list[str]]:
    """Problems with their reference runtime measured where it is missing (one sandboxed run each),
    and the ids whose reference failed its own tests (kept unmeasured: they get the ceiling)."""
    missing = [p for p in problems if p.reference_runtime_s is None]
    if not missing:
        return list(problems), []
    report = verify_problems(missing, repeats=1, timeout_s=timeout_s, scorer=scorer)
    measured = {p.problem_id: p for p in report.kept}
    return [measured.get(p.problem_id, p) for p in problems], [r.problem_id for r in report.rejected]
