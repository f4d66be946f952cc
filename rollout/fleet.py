"""`RolloutFleet`: N `RolloutWorker` Ray actors with the right resources, a batch spread across them
with results streamed back as they finish, a dead worker's work re-queued and the worker restarted
(and brought to the current weights), weight/adapter sync to all, and a shutdown that leaves no process.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcoder.records import FleetSpec, Rollout, RolloutRequest, SamplingSpec
from rollout.procs import proc_identity, reap, with_descendants
from rollout.scheduling import FleetError, FleetEvent, split_chunks, worker_env
from rollout.sync import SyncCheck, SyncReport, WeightSyncError
from rollout.weights import pack_state
from rollout.worker import RolloutWorker

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    worker_id: str
    handle: Any
    starting: Any = None  # ObjectRef that completes when a (re)started worker is ready; None once ready
    info_ref: Any = None  # ObjectRef of its info() taken before the engine starts (its pid)
    start_ref: Any = None  # ObjectRef of start(): its info() once the engine runs
    version: int = -1  # the policy version its weights are known to be at; -1 while starting
    procs: list[tuple[int, str]] = field(default_factory=list)  # (pid, identity) of its processes
    restarts: int = 0


class RolloutFleet:
    """`spec.num_workers` rollout actors serving one policy, in the Ray this process has joined
    (rlcoder.run.services.ray_session starts or joins it; the fleet never starts Ray itself)."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        max_restarts: int = 3,
        start_timeout_s: float = 900.0,
    ) -> None:
        import ray

        if not ray.is_initialized():
            raise FleetError("the rollout fleet runs in a Ray session: join or start Ray first")
        tp = spec.engine.tensor_parallel_size
        if spec.gpus_per_worker and spec.gpus_per_worker < tp:
            raise FleetError(
                f"rollout.gpus_per_worker {spec.gpus_per_worker} < tensor_parallel_size "
                f"{tp}: each engine needs a GPU per shard"
            )
        self.fleet_spec = spec
        self.spec = spec.engine
        self.max_restarts = max_restarts
        self.events: list[FleetEvent] = []
        self._version = 0
        self._sync_error = ""
        self._last_sync: tuple[str, Any, int, Any] | None = None  # (kind, payload, version, check)
        _check_capacity(ray.cluster_resources(), spec.num_workers, spec.gpus_per_worker)
        self._actor_cls = ray.remote(RolloutWorker).options(
            num_cpus=1,
            num_gpus=spec.gpus_per_worker,
            max_restarts=0,  # the fleet restarts workers itself, so it can re-sync their weights
            runtime_env={"env_vars": worker_env(self.spec.on_gpu)},
        )
        self._slots = [self._launch(f"w{i}") for i in range(spec.num_workers)]
        try:
            self._await_starting(self._slots, timeout_s=start_timeout_s)
        except BaseException:
            self.shutdown()
            raise

    # -- public ---------------------------------------------------------------------------------

    @property
    def policy_version(self) -> int:
        return self._version

    @property
    def worker_ids(self) -> list[str]:
        return [s.worker_id for s in self._slots]

    def handle(self, worker_id: str) -> Any:
        """The actor handle of a worker (for fault-injection tests and diagnostics)."""
        return next(s.handle for s in self._slots if s.worker_id == worker_id)

    def generate(
        self,
        requests: Sequence[RolloutRequest],
        sampling: SamplingSpec | None = None,
        *,
        chunk_size: int | None = None,
    ) -> Iterator[list[Rollout]]:
        """Yield each request's group of `sampling.n` rollouts as soon as its chunk finishes (completion
        order). A worker that dies mid-batch loses nothing: its chunk is re-queued and it restarts."""
        for _, group in self._run(list(requests), sampling or self.fleet_spec.sampling, chunk_size):
            yield group

    def generate_all(
        self,
        requests: Sequence[RolloutRequest],
        sampling: SamplingSpec | None = None,
        *,
        chunk_size: int | None = None,
    ) -> list[list[Rollout]]:
        """Every request's group, in request order."""
        out: list[list[Rollout]] = [[] for _ in requests]
        for index, group in self._run(list(requests), sampling or self.fleet_spec.sampling, chunk_size):
            out[index] = group
        return out

    def sync_weights(self, state: Any, version: int, check: SyncCheck | Sequence[Any]) -> list[SyncReport]:
        """Load a full state dict (name -> torch tensor or numpy array, or a `WireState`) into every
        worker as policy `version`; every worker must pass the logprob check or this raises."""
        import ray

        payload = ray.put(pack_state(state))  # one copy in the object store, shared by all workers
        return self._sync(("weights", payload, version, SyncCheck(*check)))

    def load_adapter(
        self, path: str | Path, version: int, check: SyncCheck | Sequence[Any]
    ) -> list[SyncReport]:
        """Point every worker at the LoRA adapter in `path` (a new directory per version) as `version`."""
        return self._sync(("adapter", str(path), version, SyncCheck(*check)))

    def nccl_client(self) -> Any:
        """GPU: a weight-sync client for vLLM's `NCCLTrainerWeightTransferEngine.trainer_init(...,
        client=fleet.nccl_client(), source=...)`; then call `finish_nccl_sync` after `send_weights`."""
        from rollout.nccl import FleetNcclClient

        return FleetNcclClient([s.handle for s in self._slots], self.spec.tensor_parallel_size)

    def finish_nccl_sync(self, version: int, check: SyncCheck | Sequence[Any]) -> list[SyncReport]:
        """GPU: after the learner's NCCL broadcast, check every worker and advance the version."""
        return self._sync(("verify", None, version, SyncCheck(*check)), replayable=False)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop every engine and actor and make sure none of their processes is left. Idempotent."""
        import ray

        if not ray.is_initialized():
            return
        slots, self._slots = list(getattr(self, "_slots", [])), []
        procs = [p for s in slots for p in self._processes_of(s, timeout_s=timeout_s)]
        refs = [s.handle.shutdown.remote() for s in slots if s.starting is None]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        for s in slots:
            ray.kill(s.handle, no_restart=True)
            self.events.append(FleetEvent("stopped", s.worker_id))
        left = reap(procs, grace_s=timeout_s)
        if left:
            log.error("rollout processes still alive after shutdown: %s", left)

    def processes(self, timeout_s: float = 30.0) -> list[tuple[int, str]]:
        """(pid, identity) of every worker process and its descendants, starting workers included."""
        return [p for s in self._slots for p in self._processes_of(s, timeout_s)]

    def wait_ready(self) -> None:
        """Block until no worker is (re)starting."""
        self._settle()

    def _processes_of(self, slot: _Slot, timeout_s: float) -> list[tuple[int, str]]:
        import ray

        procs = dict(slot.procs)
        if not procs:  # still starting: its pid came back before its engine began loading
            try:
                procs[ray.get(slot.info_ref, timeout=timeout_s)["pid"]] = ""
            except (ray.exceptions.RayError, TimeoutError):
                pass
        # with descendants born since the worker reported (visible when it runs on this node)
        return with_descendants(procs)

    def __enter__(self) -> RolloutFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- scheduling -------------------------------------------------------------------------------

    def _run(
        self, requests: list[RolloutRequest], sampling: SamplingSpec, chunk_size: int | None
    ) -> Iterator[tuple[int, list[Rollout]]]:
        import ray

        if self._sync_error:
            raise FleetError(f"the last weight sync failed; sync again before sampling ({self._sync_error})")
        queue = collections.deque(split_chunks(len(requests), len(self._slots), chunk_size))
        in_flight: dict[Any, tuple[_Slot, range]] = {}
        while queue or in_flight:
            self._dispatch(queue, in_flight, requests, sampling)
            starting = {s.starting: s for s in self._slots if s.starting is not None}
            if not in_flight and not starting:
                raise FleetError(f"no worker is ready at policy version {self._version}")
            done, _ = ray.wait([*in_flight, *starting], num_returns=1)
            ref = done[0]
            if ref in starting:
                self._try_finish_start(starting[ref])
                continue
            slot, chunk = in_flight.pop(ref)
            try:
                rollouts = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                queue.appendleft(chunk)
                self._event("requeued", slot.worker_id, f"{len(chunk)} prompts")
                self._restart(slot, exc)
                continue
            # Keep the worker busy while the caller handles these results.
            self._dispatch(queue, in_flight, requests, sampling)
            for offset, index in enumerate(chunk):
                yield index, rollouts[offset * sampling.n : (offset + 1) * sampling.n]

    def _dispatch(
        self,
        queue: collections.deque[range],
        in_flight: dict[Any, tuple[_Slot, range]],
        requests: list[RolloutRequest],
        sampling: SamplingSpec,
    ) -> None:
        for slot in self._idle(in_flight):
            if not queue:
                return
            chunk = queue.popleft()
            in_flight[slot.handle.generate.remote([requests[i] for i in chunk], sampling)] = (slot, chunk)

    def _idle(self, in_flight: dict[Any, tuple[_Slot, range]]) -> list[_Slot]:
        busy = {id(slot) for slot, _ in in_flight.values()}
        return [
            s for s in self._slots if s.starting is None and s.version == self._version and id(s) not in busy
        ]

    # -- sync -------------------------------------------------------------------------------------

    def _sync(self, sync: tuple[str, Any, int, SyncCheck], replayable: bool = True) -> list[SyncReport]:
        import ray

        kind, _, version, _ = sync
        self._settle()
        # A worker restarted from now on must come up with these weights, not the model dir's.
        self._last_sync = sync if replayable else None
        pending = {self._send_sync(s, sync): s for s in self._slots}
        reports, failures = [], []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            slot = pending.pop(done[0])
            try:
                report = ray.get(done[0]) if slot.starting is None else self._finish_start(slot)
            except ray.exceptions.RayActorError as exc:
                self._restart(slot, exc)  # its start replays this very sync (when replayable)
                if replayable:
                    pending[slot.starting] = slot
                continue
            except WeightSyncError as exc:
                failures.append(str(exc))
                self._event("sync_failed", slot.worker_id, str(exc))
                continue
            if report is None:
                if slot.starting is not None:  # died again while starting: _finish_start restarted it
                    pending[slot.starting] = slot
                continue
            slot.version = version
            reports.append(report)
            self._event("synced", slot.worker_id, f"{kind} v{version} gap {report.gap.mean_abs:.2e}")
        if failures:
            self._sync_error = "; ".join(failures)
            raise WeightSyncError(
                f"{len(failures)} of {len(self._slots)} workers failed the sync: {self._sync_error}"
            )
        self._version, self._sync_error = version, ""
        return reports

    def _send_sync(self, slot: _Slot, sync: tuple[str, Any, int, SyncCheck]) -> Any:
        kind, payload, version, check = sync
        if kind == "weights":
            return slot.handle.update_weights.remote(payload, version, check)
        if kind == "adapter":
            return slot.handle.load_adapter.remote(payload, version, check)
        return slot.handle.verify.remote(version, check)

    # -- worker lifecycle -------------------------------------------------------------------------

    def _launch(self, worker_id: str) -> _Slot:
        handle = self._actor_cls.remote(
            self.spec, worker_id, self.fleet_spec.sync_check_tolerance, start=False
        )
        slot = _Slot(worker_id, handle)
        slot.info_ref = handle.info.remote()
        slot.start_ref = slot.starting = handle.start.remote()
        if self._last_sync is not None:  # actor calls run in order: the sync runs right after start
            slot.starting = self._send_sync(slot, self._last_sync)
        return slot

    def _await_starting(self, slots: list[_Slot], timeout_s: float) -> None:
        import ray

        refs = [s.starting for s in slots]
        _, not_done = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        if not_done:
            raise FleetError(f"{len(not_done)} rollout workers did not start within {timeout_s:.0f} s")
        for slot in slots:
            self._try_finish_start(slot)

    def _settle(self) -> None:
        """Wait for every (re)starting worker to be ready, so a sync is not overtaken by a start."""
        while any(s.starting is not None for s in self._slots):
            self._await_starting([s for s in self._slots if s.starting is not None], timeout_s=900.0)

    def _finish_start(self, slot: _Slot) -> SyncReport | None:
        """Mark a (re)started worker ready at the version its start sync reached. Returns that sync's
        report, or None (no sync ran, or the worker died again and was restarted)."""
        import ray

        try:
            info = ray.get(slot.start_ref)
            slot.procs = [(p, proc_identity(p)) for p in [info["pid"], *info["child_pids"]]]
            result = ray.get(slot.starting)
        except ray.exceptions.RayActorError as exc:
            self._restart(slot, exc)
            return None
        except WeightSyncError as exc:  # the replayed sync failed its check: never sample from it
            slot.starting, slot.version = None, -1
            self._event("sync_failed", slot.worker_id, str(exc))
            raise
        slot.starting = None
        report = result if isinstance(result, SyncReport) else None
        slot.version = report.policy_version if report else (0 if self._last_sync is None else -1)
        self._event("started", slot.worker_id, f"pid {info['pid']} in {info['start_s']:.1f} s")
        if slot.version != self._version:
            self._event("stale", slot.worker_id, f"at version {slot.version}, fleet at {self._version}")
        return report

    def _try_finish_start(self, slot: _Slot) -> None:
        """As `_finish_start`, where a failed replay only leaves that worker out (it is stale)."""
        try:
            self._finish_start(slot)
        except WeightSyncError:
            pass

    def _restart(self, slot: _Slot, exc: BaseException) -> None:
        import ray

        self._event("died", slot.worker_id, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        procs = self._processes_of(slot, timeout_s=0.0)
        ray.kill(slot.handle, no_restart=True)
        reap(procs, grace_s=0.0)  # an engine subprocess must not outlive its actor
        if slot.restarts >= self.max_restarts:
            raise FleetError(f"{slot.worker_id} died {slot.restarts + 1} times; giving up") from exc
        fresh = self._launch(slot.worker_id)
        fresh.restarts = slot.restarts + 1
        slot.__dict__.update(fresh.__dict__)  # in place: in-flight bookkeeping refers to this slot
        self._event("restarted", slot.worker_id, f"restart {slot.restarts}")

    def _event(self, kind: str, worker_id: str, detail: str = "") -> None:
        self.events.append(FleetEvent(kind, worker_id, detail))
        level = logging.WARNING if kind in ("died", "requeued", "sync_failed", "stale") else logging.INFO
        log.log(level, "rollout worker %s %s %s", worker_id, kind, detail)


def _check_capacity(resources: dict[str, float], workers: int, gpus_per_worker: float) -> None:
    """Fail now rather than wait for actors Ray can never place (each worker takes 1 CPU)."""
    need = {"CPU": float(workers), "GPU": workers * gpus_per_worker}
    short = {k: (v, resources.get(k, 0.0)) for k, v in need.items() if v > resources.get(k, 0.0)}
    if short:
        detail = ", ".join(f"{k}: need {v:g}, cluster has {have:g}" for k, (v, have) in short.items())
        raise FleetError(f"rollout.num_workers={workers} does not fit this Ray cluster ({detail})")
