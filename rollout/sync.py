"""The post-sync check: after new weights (or an adapter) land in an engine, the engine scores a fixed
sequence and its logprobs must match the learner's for the same sequence; and the reference
implementation of those logprobs (`completion_logprobs`, on any transformers causal LM)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rollout.engine import RolloutEngine

# After new weights (or a new adapter) land in an engine, the engine scores a
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


def completion_logprobs(model: Any, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
    """Temperature-1 logprob of each completion token under a transformers causal LM: what a learner
    computes for the post-sync check (`SyncCheck.expected_logprobs`)."""
    import torch

    if not prompt_ids:
        raise ValueError("completion_logprobs needs at least one prompt token")
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    start = len(prompt_ids)
    # the logits at position t predict token t + 1
    steps = logits[start - 1 : start - 1 + len(completion_ids)].log_softmax(-1)
    target = torch.tensor(list(completion_ids), device=device).unsqueeze(-1)
    return steps.gather(-1, target).squeeze(-1).tolist()
