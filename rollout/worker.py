"""`RolloutWorker`: owns one engine, turns its samples into `Rollout` records stamped with the policy
version, and syncs weights or adapters with a post-sync logprob check. A plain class: the fleet makes
it a Ray actor (`ray.remote(RolloutWorker)`), and tests can drive it in process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from rlcoder.records import EngineSpec, Rollout, RolloutRequest, SamplingSpec
from rollout.engine import RolloutEngine, Sample
from rollout.procs import child_pids
from rollout.sync import SyncCheck, SyncReport, WeightSyncError, verify_check

log = logging.getLogger(__name__)


def build_engine(spec: EngineSpec) -> RolloutEngine:
    """Start the engine `spec` names. Heavy imports happen here, not at module import."""
    if spec.kind == "vllm":
        from rollout.vllm_engine import VllmEngine

        return VllmEngine(spec)
    from rollout.hf_engine import HfEngine

    return HfEngine(spec)


def to_rollouts(
    requests: Sequence[RolloutRequest],
    groups: Sequence[Sequence[Sample]],
    policy_version: int,
    worker_id: str,
) -> list[Rollout]:
    """Engine samples -> Rollout records, request by request, sample by sample."""
    if len(groups) != len(requests):
        raise ValueError(f"engine returned {len(groups)} groups for {len(requests)} prompts")
    return [
        Rollout(
            rollout_id=req.rollout_id(i),
            problem_id=req.problem_id,
            sample_index=i,
            prompt=req.prompt,
            prompt_token_ids=list(req.prompt_token_ids),
            completion_token_ids=list(s.token_ids),
            completion_logprobs=list(s.logprobs),
            completion_text=s.text,
            finish_reason=s.finish_reason,
            policy_version=policy_version,
            step=req.step,
            worker_id=worker_id,
        )
        for req, group in zip(requests, groups, strict=True)
        for i, s in enumerate(group)
    ]


class RolloutWorker:
    """One engine, one policy version. Methods return records and plain data only."""

    def __init__(
        self,
        spec: EngineSpec,
        worker_id: str,
        sync_tolerance: float,
        engine: RolloutEngine | None = None,
        start: bool = True,
    ) -> None:
        """`start=False` defers the engine to `start()`: the fleet learns the actor's pid first, so
        even a worker killed while its engine loads leaves nothing behind."""
        self.worker_id = worker_id
        self.spec = spec
        self.sync_tolerance = sync_tolerance
        self._version = 0  # the weights in the model dir are version 0
        self._sync_error = ""  # set when the last sync failed its check: sampling is refused
        self._engine: RolloutEngine | None = engine
        self.start_s = 0.0
        if start and engine is None:
            self.start()

    def start(self) -> dict[str, Any]:
        """Build the engine (idempotent); returns `info()`, now with the engine's processes."""
        if self._engine is None:
            started = time.perf_counter()
            self._engine = build_engine(self.spec)
            self.start_s = time.perf_counter() - started
        return self.info()

    def info(self) -> dict[str, Any]:
        """Who and where this worker is (the fleet uses the pids to leave no orphan process)."""
        return {
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "child_pids": child_pids(os.getpid()),
            "engine": self.spec.kind,
            "policy_version": self._version,
            "start_s": self.start_s,
        }

    def policy_version(self) -> int:
        return self._version

    def generate(self, requests: list[RolloutRequest], sampling: SamplingSpec) -> list[Rollout]:
        if self._sync_error:
            raise WeightSyncError(f"{self.worker_id} refuses to sample: {self._sync_error}")
        groups = self._live().generate([list(r.prompt_token_ids) for r in requests], sampling)
        return to_rollouts(requests, groups, self._version, self.worker_id)

    def update_weights(self, state: Any, version: int, check: SyncCheck | Sequence[Any]) -> SyncReport:
        """Load a full state dict (a `WireState`, or name -> tensor/array) as policy `version`, then
        verify the engine's logprobs of `check` against the learner's. Raises WeightSyncError."""
        started = time.perf_counter()
        try:
            self._live().load_weights(state)
        except Exception as exc:
            self._sync_error = f"loading weights for version {version} failed: {exc}"
            raise WeightSyncError(f"{self.worker_id}: {self._sync_error}") from exc
        return self.verify(version, check, time.perf_counter() - started)

    def load_adapter(self, path: str, version: int, check: SyncCheck | Sequence[Any]) -> SyncReport:
        """Sample from the base weights plus the LoRA adapter at `path` as policy `version`, checked."""
        started = time.perf_counter()
        try:
            self._live().load_adapter(str(path), version)
        except Exception as exc:
            self._sync_error = f"loading adapter {path} for version {version} failed: {exc}"
            raise WeightSyncError(f"{self.worker_id}: {self._sync_error}") from exc
        return self.verify(version, check, time.perf_counter() - started)

    def verify(self, version: int, check: SyncCheck | Sequence[Any], load_s: float = 0.0) -> SyncReport:
        """Check the weights now in the engine against the learner's logprobs; on success they become
        policy `version`, on failure the worker refuses to sample until a sync passes."""
        started = time.perf_counter()
        try:
            gap = verify_check(
                self._live(), check, self.sync_tolerance, f"{self.worker_id} version {version}"
            )
        except WeightSyncError as exc:
            self._sync_error = str(exc)
            raise
        self._version, self._sync_error = version, ""
        log.info("%s now samples policy version %d (gap %.2e)", self.worker_id, version, gap.mean_abs)
        return SyncReport(self.worker_id, version, load_s, time.perf_counter() - started, gap)

    # -- GPU: the learner's NCCL broadcast (vLLM engine only); see RolloutFleet.nccl_client --------

    def init_weight_transfer(self, init_info: dict[str, Any]) -> None:
        self._vllm().init_weight_transfer(init_info)

    def start_weight_update(self) -> None:
        self._sync_error = "an NCCL weight update is in progress"
        self._vllm().start_weight_update()

    def receive_weights(self, update_info: dict[str, Any]) -> None:
        self._vllm().receive_weights(update_info)

    def finish_weight_update(self) -> None:
        """Ends the NCCL update; the fleet then calls `verify` (RolloutFleet.finish_nccl_sync)."""
        self._sync_error = "an NCCL weight update has not been verified yet"
        self._vllm().finish_weight_update()

    def _vllm(self) -> Any:
        engine = self._live()
        if not hasattr(engine, "receive_weights"):
            raise TypeError(f"{self.worker_id}: NCCL weight transfer needs the vllm engine")
        return engine

    # -- lifecycle ------------------------------------------------------------------------------

    def _live(self) -> RolloutEngine:
        if self._engine is None:
            raise RuntimeError(f"{self.worker_id} is shut down")
        return self._engine

    def shutdown(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
