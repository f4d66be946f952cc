"""The two seams the learners and eval talk through, as small Protocols: a RolloutSource (the live
rollout fleet; a replay file) and a Scorer (the reward service's client; the in-process scorer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rlcoder.config import RunConfig
from rlcoder.records import Problem, Rollout, RolloutRequest, SamplingSpec, ScoreItem, Verdict

if TYPE_CHECKING:
    from rlcoder.prompts import PromptText
    from rlcoder.run_dir import StageDir


class RolloutSource(Protocol):
    def generate(self, requests: list[RolloutRequest], sampling: SamplingSpec) -> list[Rollout]:
        """`sampling.n` rollouts per request, grouped by request in request order."""
        ...


class PolicyFleet(RolloutSource, Protocol):
    """A RolloutSource whose weights the learner updates."""

    def sync(
        self, model: Any, version: int, check_prompt_ids: list[int], check_completion_ids: list[int]
    ) -> None:
        """Push the learner's weights (or adapter) as `version`; raise if the engines then disagree
        with the learner on the check sequence."""
        ...


class Scorer(Protocol):
    async def score(self, items: list[ScoreItem]) -> list[Verdict]:
        """One verdict per item, in order; infra_error where the service could not answer."""
        ...


@dataclass
class RLSetup:
    """Everything an RL stage works with, started by the train job."""

    cfg: RunConfig
    stage: StageDir
    tokenizer: Any
    problems: dict[str, Problem]  # by problem_id
    prompts: list[PromptText]  # one per train problem that fits max_prompt_tokens
    fleet: PolicyFleet
    scorer: Scorer
    log: Callable[[str], None]
