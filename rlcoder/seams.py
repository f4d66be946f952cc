"""The two seams the learners and eval talk through, as small Protocols: a RolloutSource (the live
rollout fleet; a replay file) and a Scorer (the reward service's client; the in-process scorer)."""

from __future__ import annotations

from typing import Any, Protocol

from rlcoder.records import Rollout, RolloutRequest, SamplingSpec, ScoreItem, Verdict


class RolloutSource(Protocol):
    def generate(self, requests: list[RolloutRequest], sampling: SamplingSpec) -> list[Rollout]:
        """`sampling.n` rollouts per request, grouped by request in request order."""
        ...


class PolicyFleet(RolloutSource, Protocol):
    """A RolloutSource whose weights the learner updates."""

    def sync(self, model: Any, version: int, check_prompt_ids: list[int], check_completion_ids: list[int]) -> None:
        """Push the learner's weights (or adapter) as `version`; raise if the engines then disagree
        with the learner on the check sequence."""
        ...


class Scorer(Protocol):
    async def score(self, items: list[ScoreItem]) -> list[Verdict]:
        """One verdict per item, in order; infra_error where the service could not answer."""
        ...
