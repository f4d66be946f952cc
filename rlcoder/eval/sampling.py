"""Measuring a policy: sample n completions per problem from a RolloutSource (the fleet, or multi-turn
episodes over it), score them, and group them per problem for pass rates and pass@k."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rlcoder.config import RunConfig
from rlcoder.env.episodes import groups_after_turn
from rlcoder.env.scoring import rewards_for, verdicts_for
from rlcoder.eval.pass_at_k import PassCounts
from rlcoder.records import Problem, RolloutRequest, ScoredGroup, group_scored
from rlcoder.seams import RolloutSource, Scorer
from rlcoder.specs import sampling_spec


def sample_and_score(
    source: RolloutSource,
    scorer: Scorer,
    problems: dict[str, Problem],
    requests: list[RolloutRequest],
    cfg: RunConfig,
    n: int,
) -> list[ScoredGroup]:
    """One group of n samples per request, scored; infra errors are kept as verdicts (and counted
    apart by PassCounts), never turned into failures. Multi-turn episodes are scored by their final
    answer; their turns keep their own verdicts for `pass_rate_by_turn`."""
    rollouts = [r for group in source.generate_all(requests, sampling_spec(cfg, n)) for r in group]
    verdicts = asyncio.run(verdicts_for(scorer, problems, rollouts, cfg))
    return group_scored(rollouts, verdicts, rewards_for(rollouts, verdicts, cfg))


def pass_rate_by_turn(groups: Sequence[ScoredGroup], turns: int) -> dict[int, float]:
    """Pass rate of multi-turn episodes had they stopped after turn 1, 2, ... `turns` (the last is
    OpenCodeInterpreter's "+ execution feedback" column); empty for single-turn samples."""
    if turns < 2 or not all(r.turns for g in groups for r in g.rollouts):
        return {}
    episodes = [g.rollouts for g in groups]
    return {t: PassCounts.from_groups(groups_after_turn(episodes, t)).pass_rate for t in range(1, turns + 1)}
