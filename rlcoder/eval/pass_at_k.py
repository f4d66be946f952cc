"""Pass counts per problem (or per group) and the unbiased pass@k estimator of the Codex paper
(Chen et al. 2021): what eval, the RL stage's evaluations and reports all count with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rlcoder.records import UNSCORED, ScoredGroup, VerdictStatus, pass_rate


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n, of which c are
    correct, is correct: 1 - C(n-c, k) / C(n, k), computed stably."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass
class PassCounts:
    """Per-problem sample and pass counts, and what they add up to."""

    samples: dict[str, int] = field(default_factory=dict)  # problem_id -> n scored samples
    passed: dict[str, int] = field(default_factory=dict)  # problem_id -> c passing samples
    infra_errors: int = 0
    bad_tests: int = 0  # the problem's tests, not the code, failed: dropped like infra errors

    @classmethod
    def from_groups(
        cls, groups: Sequence[ScoredGroup], by: Literal["problem", "group"] = "problem"
    ) -> PassCounts:
        """Counts per problem (eval: one policy), or per group (a training run: each step's group
        comes from another policy, so its samples are not pooled with other steps')."""
        out = cls()
        for i, g in enumerate(groups):
            key = g.problem_id if by == "problem" else f"{g.step}/{g.problem_id}/{i}"
            for v in g.verdicts:
                if v.status in UNSCORED:
                    out.infra_errors += v.status is VerdictStatus.INFRA_ERROR
                    out.bad_tests += v.status is VerdictStatus.BAD_TEST
                    continue
                out.samples[key] = out.samples.get(key, 0) + 1
                out.passed[key] = out.passed.get(key, 0) + int(v.status is VerdictStatus.PASS)
        return out

    @property
    def pass_rate(self) -> float:
        """Passing samples over scored samples (NaN when none): pass@1 averaged over problems when n
        is equal."""
        return pass_rate(sum(self.passed.values()), sum(self.samples.values()))

    def pass_at(self, k: int) -> float:
        """Mean unbiased pass@k over problems with at least k scored samples."""
        values = [pass_at_k(n, self.passed[p], k) for p, n in self.samples.items() if n >= k]
        return sum(values) / len(values) if values else float("nan")

    def solved(self) -> int:
        return sum(1 for c in self.passed.values() if c > 0)

    def pass_at_ks(self, ks: Sequence[int]) -> dict[int, tuple[float, int]]:
        """k -> (mean pass@k, how many problems had at least k samples), for every k some have."""
        out = {}
        for k in ks:
            eligible = sum(1 for n in self.samples.values() if n >= k)
            if eligible:
                out[k] = (self.pass_at(k), eligible)
        return out
