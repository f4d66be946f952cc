"""The `RolloutEngine` seam (vLLM or transformers behind one small Protocol) and what an engine returns
(pure, no heavy imports). An engine starts from an `EngineSpec` (rlcoder.records); `worker.build_engine`
picks the implementation; the post-sync check is in sync.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
