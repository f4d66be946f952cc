"""The two seams the learners and eval talk through, as small Protocols: a RolloutSource (the live
rollout fleet; a replay file) and a Scorer (the reward service's client; the in-process scorer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rlcoder.config import RunConfig
from rlcoder.records import Problem, Rollout, RolloutRequest, SamplingSpec, ScoreItem, Verdict

if TYPE_CHECKING:
    from rlcoder.prompts import PromptText
    from rlcoder.run_dir import StageDir


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
