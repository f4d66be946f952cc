"""The seams the learners and eval talk through, as small Protocols: a RolloutSource (the live rollout
fleet; multi-turn episodes over it; a scripted fleet in tests), the PolicyFleet whose weights the learner
updates, and a Scorer (the reward service's client; the in-process scorer)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rlcoder.records import Rollout, RolloutRequest, SamplingSpec, ScoreItem, Verdict


class RolloutSource(Protocol):
    def generate_all(
        self, requests: Sequence[RolloutRequest], sampling: SamplingSpec | None = None
    ) -> list[list[Rollout]]:
        """`sampling.n` rollouts per request: result[i] is request i's group."""
        ...


class PolicyFleet(RolloutSource, Protocol):
    """A RolloutSource whose weights the learner updates. Each sync makes the engines score a check
    sequence and raises if they disagree with the learner's logprobs (`check`: a SyncCheck)."""

    def sync_weights(self, state: Any, version: int, check: Any) -> Any:
        """Load a full state dict into every engine as policy `version`."""
        ...

    def load_adapter(self, path: str | Path, version: int, check: Any) -> Any:
        """Point every engine at the LoRA adapter saved in `path` as policy `version`."""
        ...


class Scorer(Protocol):
    async def score(self, items: list[ScoreItem]) -> list[Verdict]:
        """One verdict per item, in order; infra_error where the service could not answer."""
        ...
