"""Measuring a policy: sample n completions per problem with the rollout fleet, score them, and
summarize as pass rates and unbiased pass@k (Chen et al. 2021, the Codex paper)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rlcoder.config import RunConfig
from rlcoder.records import Problem, RolloutRequest, SamplingSpec, ScoredGroup, VerdictStatus
from rlcoder.seams import RolloutSource, Scorer


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
class EvalSummary:
    """Per-problem sample and pass counts, and what they add up to."""

    samples: dict[str, int] = field(default_factory=dict)  # problem_id -> n scored samples
    passed: dict[str, int] = field(default_factory=dict)  # problem_id -> c passing samples
    infra_errors: int = 0

    @classmethod
    def from_groups(cls, groups: Sequence[ScoredGroup]) -> EvalSummary:
        out = cls()
        for g in groups:
            for v in g.verdicts:
                if v.status is VerdictStatus.INFRA_ERROR:
                    out.infra_errors += 1
                    continue
                out.samples[g.problem_id] = out.samples.get(g.problem_id, 0) + 1
                out.passed[g.problem_id] = out.passed.get(g.problem_id, 0) + int(
                    v.status is VerdictStatus.PASS
                )
        return out

    @property
    def pass_rate(self) -> float:
        """Passing samples over scored samples: pass@1 averaged over problems when n is equal."""
        n = sum(self.samples.values())
        return sum(self.passed.values()) / n if n else 0.0

    def pass_at(self, k: int) -> float:
        """Mean unbiased pass@k over problems with at least k scored samples."""
        values = [pass_at_k(n, self.passed[p], k) for p, n in self.samples.items() if n >= k]
        return sum(values) / len(values) if values else float("nan")

    def solved(self) -> int:
        return sum(1 for c in self.passed.values() if c > 0)


def sample_and_score(
    fleet: RolloutSource,
    scorer: Scorer,
    problems: dict[str, Problem],
    requests: list[RolloutRequest],
    cfg: RunConfig,
    n: int,
) -> list[ScoredGroup]:
    """One group of n samples per request, scored; infra errors are kept as verdicts (and counted
    apart by EvalSummary), never turned into failures."""
    from rlcoder.grpo import score_item
    from rlcoder.records import RewardMode, reward_from_verdict

    sampling = SamplingSpec(
        n=n,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        max_new_tokens=cfg.rollout.max_new_tokens,
    )
    rollouts = [r for group in fleet.generate_all(requests, sampling) for r in group]
    items = [score_item(problems[r.problem_id], r, cfg) for r in rollouts]
    verdicts = asyncio.run(scorer.score(items))
    mode = RewardMode(cfg.reward.mode)
    groups: dict[str, ScoredGroup] = {}
    for r, v in zip(rollouts, verdicts, strict=True):
        g = groups.setdefault(r.problem_id, ScoredGroup(r.problem_id, [], [], [], step=r.step))
        g.rollouts.append(r)
        g.verdicts.append(v)
        g.rewards.append(reward_from_verdict(v, mode))
    return list(groups.values())
