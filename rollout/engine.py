"""The `RolloutEngine` seam (vLLM or transformers behind one small Protocol), what an engine returns,
and the post-sync logprob check (pure logic, no heavy imports). An engine starts from an `EngineSpec`
(rlcoder.records); `worker.build_engine` picks the implementation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from rlcoder.records import SamplingSpec


@dataclass
class Sample:
    """One completion as an engine returns it (engine-neutral, never a framework object)."""

    token_ids: list[int]  # completion tokens only, the EOS token included when it ended the sample
    logprobs: list[float]  # one per token, under the sampling distribution (temperature, top_p applied)
    text: str  # decoded completion, special tokens and any matched stop string left out
    finish_reason: str  # "stop" (EOS or a stop string) | "length"


class RolloutEngine(Protocol):
    """What a rollout worker needs from an inference engine."""

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> list[list[Sample]]:
        """`sampling.n` samples for each prompt: result[i] holds prompt i's group, in sample order."""
        ...

    def load_weights(self, state: Mapping[str, Any]) -> None:
        """Replace the policy weights in place (Hugging Face parameter names, tensors or arrays).
        The whole policy is replaced: an adapter loaded before is dropped."""
        ...

    def load_adapter(self, path: str, version: int) -> None:
        """Sample from now on with the base weights plus the LoRA adapter (PEFT format) at `path`."""
        ...

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """Logprob of each completion token given what precedes it, at temperature 1 (no top_p)."""
        ...

    def close(self) -> None:
        """Release the engine (memory, threads, subprocesses). Idempotent."""
        ...


# ---------------------------------------------------------------------------------------------
# The post-sync check: after new weights (or a new adapter) land in an engine, the engine scores a
# fixed sequence and its logprobs must match what the learner computed for the same sequence.
# Peers have shipped runs that silently sampled the base model for months; here a mismatch raises.


class SyncCheck(NamedTuple):
    """A fixed sequence and the learner's logprobs of its completion tokens under the new weights."""

    prompt_ids: list[int]
    completion_ids: list[int]
    expected_logprobs: list[float]  # one per completion token, temperature 1


class WeightSyncError(RuntimeError):
    """The engine does not sample from the weights the learner sent (or the sync itself failed)."""


@dataclass
class LogprobGap:
    """How far the engine's logprobs are from the learner's on the check sequence."""

    mean_abs: float
    max_abs: float
    tokens: int


@dataclass
class SyncReport:
    """What one worker did in one weight or adapter sync."""

    worker_id: str
    policy_version: int
    load_s: float  # time to put the weights into the engine
    check_s: float  # time to score the check sequence
    gap: LogprobGap


def logprob_gap(expected: Sequence[float], actual: Sequence[float]) -> LogprobGap:
    """Compare two logprob lists of equal length; a NaN anywhere counts as an infinite gap."""
    if len(expected) != len(actual):
        raise WeightSyncError(f"check scored {len(actual)} tokens, expected {len(expected)}")
    if not expected:
        raise WeightSyncError("the check sequence has no completion tokens")
    diffs = [abs(e - a) for e, a in zip(expected, actual, strict=True)]
    if any(math.isnan(d) for d in diffs):
        return LogprobGap(math.inf, math.inf, len(diffs))
    return LogprobGap(sum(diffs) / len(diffs), max(diffs), len(diffs))


def verify_check(
    engine: RolloutEngine, check: SyncCheck | Sequence[Any], tolerance: float, what: str
) -> LogprobGap:
    """Score `check` on `engine`; raise WeightSyncError when the mean gap exceeds `tolerance`."""
    prompt_ids, completion_ids, expected = SyncCheck(*check)
    actual = engine.score_logprobs(list(prompt_ids), list(completion_ids))
    gap = logprob_gap(expected, actual)
    if not gap.mean_abs <= tolerance:
        raise WeightSyncError(
            f"{what}: the engine's logprobs on the check sequence are {gap.mean_abs:.4f} apart on average "
            f"(max {gap.max_abs:.4f} over {gap.tokens} tokens), above the tolerance {tolerance}: "
            "the engine is not sampling from the weights the learner sent"
        )
    return gap
