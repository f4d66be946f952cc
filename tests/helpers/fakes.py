"""Scripted stand-ins for the seams (rlcoder/seams.py): a RolloutSource whose answers a function writes,
and a Scorer whose verdicts a function decides. Both record what they were asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlcoder.records import Rollout, RolloutRequest, SamplingSpec, ScoreItem, Verdict, VerdictStatus


def fixed_rollout(q: RolloutRequest, i: int, version: int = 0) -> Rollout:
    """Sample i of request q: three completion tokens, text `code i`, stamped with `version`."""
    return Rollout(
        q.rollout_id(i), q.problem_id, i, q.prompt, q.prompt_token_ids,
        [5, 6, 7], [-0.5, -0.5, -0.5], f"code {i}", "stop", version, q.step,
    )  # fmt: skip


class ScriptedFleet:
    """A PolicyFleet: `sampling.n` rollouts per request, each `answer(request, sample_index)`
    (default: `fixed_rollout` at policy `version`). `asked` holds each call's (requests, sampling);
    `synced` each weight sync as (kind, payload, version, check): kind "weights" with the state dict
    it got, or "adapter" with the adapter directory's tensors (read at sync time)."""

    def __init__(
        self, answer: Callable[[RolloutRequest, int], Rollout] | None = None, version: int = 0
    ) -> None:
        self.answer = answer or (lambda q, i: fixed_rollout(q, i, version))
        self.asked: list[tuple[list[RolloutRequest], SamplingSpec]] = []
        self.synced: list[tuple[str, Any, int, Any]] = []

    def generate_all(
        self, requests: Sequence[RolloutRequest], sampling: SamplingSpec | None = None
    ) -> list[list[Rollout]]:
        sampling = sampling or SamplingSpec()
        self.asked.append((list(requests), sampling))
        return [[self.answer(q, i) for i in range(sampling.n)] for q in requests]

    def sync_weights(self, state: Any, version: int, check: Any) -> None:
        self.synced.append(("weights", {k: v.detach().clone() for k, v in state.items()}, version, check))

    def load_adapter(self, path: str | Path, version: int, check: Any) -> None:
        from safetensors.torch import load_file

        self.synced.append(
            ("adapter", load_file(str(Path(path) / "adapter_model.safetensors")), version, check)
        )


class ScriptedScorer:
    """A Scorer (`await score(items)`) and a synchronous scorer (`scorer(items)`) in one: the verdict of
    the i-th item of a batch is `verdict(item, i)`. `batches` holds every batch it was asked to score."""

    def __init__(self, verdict: Callable[[ScoreItem, int], Verdict]) -> None:
        self.verdict = verdict
        self.batches: list[list[ScoreItem]] = []

    @classmethod
    def in_order(cls, statuses: Sequence[VerdictStatus]) -> ScriptedScorer:
        """Each batch's verdicts are `statuses` by position (a passing one counts 1 of 1)."""
        return cls(
            lambda item, i: Verdict(statuses[i], passed=int(statuses[i] is VerdictStatus.PASS), total=1)
        )

    def __call__(self, items: list[ScoreItem]) -> list[Verdict]:
        self.batches.append(list(items))
        return [self.verdict(item, i) for i, item in enumerate(items)]

    async def score(self, items: list[ScoreItem]) -> list[Verdict]:
        return self(items)
