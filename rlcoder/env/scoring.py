"""Verdicts and rewards for a batch of rollouts, whichever RolloutSource made them: single answers go to
the reward service; multi-turn episodes were scored turn by turn and carry their final verdict. The
reward of an episode that took t turns is discounted by rollout.turn_discount^(t - 1)."""

from __future__ import annotations

from collections.abc import Sequence

from rlcoder.config import RunConfig
from rlcoder.data.verification import rollout_item
from rlcoder.records import Problem, RewardMode, Rollout, Verdict, reward_from_verdict
from rlcoder.seams import Scorer


def final_verdict(rollout: Rollout) -> Verdict | None:
    """The verdict of an episode's last answer against all tests (None for a single answer)."""
    return rollout.turns[-1].verdict if rollout.turns else None


async def verdicts_for(
    scorer: Scorer, problems: dict[str, Problem], rollouts: Sequence[Rollout], cfg: RunConfig
) -> list[Verdict]:
    """One verdict per rollout, in order: an episode's final verdict, or the reward service's."""
    carried = [final_verdict(r) for r in rollouts]
    todo = [i for i, v in enumerate(carried) if v is None]
    if todo:
        items = [rollout_item(problems[rollouts[i].problem_id], rollouts[i], cfg.reward) for i in todo]
        for i, v in zip(todo, await scorer.score(items), strict=True):
            carried[i] = v
    return [v for v in carried if v is not None]


def episode_reward(rollout: Rollout, mode: RewardMode, discount: float = 1.0) -> float | None:
    """The final verdict's reward times discount^(turns - 1); None (drop) for infra errors."""
    verdict = final_verdict(rollout)
    if verdict is None:
        raise ValueError(f"{rollout.rollout_id}: not a multi-turn episode (no turns)")
    reward = reward_from_verdict(verdict, mode)
    return None if reward is None else reward * discount ** (len(rollout.turns) - 1)


def rewards_for(
    rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], cfg: RunConfig
) -> list[float | None]:
    """Rewards from verdicts (reward_from_verdict), episodes discounted by their turns."""
    mode, discount = RewardMode(cfg.reward.mode), cfg.rollout.turn_discount
    return [
        episode_reward(r, mode, discount) if r.turns else reward_from_verdict(v, mode)
        for r, v in zip(rollouts, verdicts, strict=True)
    ]
