"""The rollout fleet as one controller actor that every learner rank reaches: `FleetHost` owns a
`RolloutFleet` (slots, restarts, policy versions) inside a Ray actor, and `FleetClient` is the
PolicyFleet each rank (and the driver's eval) calls through. Calls run one at a time in the actor,
in arrival order. Full weights can arrive in bounded buckets: each is put into the object store on
its own, so the sender never holds more than one bucket of packed weights."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rlcoder.records import FleetSpec, Rollout, RolloutRequest, SamplingSpec
from rollout.weights import WireState, pack_state


class FleetHost:
    """The actor's body (a plain class: `start_fleet_host` makes it an actor)."""

    def __init__(self, spec: FleetSpec, **kwargs: Any) -> None:
        from rollout.fleet import RolloutFleet

        self.fleet = RolloutFleet(spec, **kwargs)

    def generate_all(self, requests: list[RolloutRequest], sampling: SamplingSpec | None = None) -> list:
        return self.fleet.generate_all(requests, sampling)

    def sync_weights(self, state: Any, version: int, check: Any) -> list:
        return self.fleet.sync_weights(state, version, check)

    def sync_weight_refs(self, refs: list[Any], version: int, check: Any) -> list:
        """The buckets (ObjectRefs of WireStates, in a list so Ray passes them unresolved) as one state."""
        import ray

        arrays: dict[str, Any] = {}
        dtypes: dict[str, str] = {}
        for ref in refs:
            part = ray.get(ref)
            arrays.update(part.arrays)
            dtypes.update(part.torch_dtypes)
        return self.fleet.sync_weights(WireState(arrays, dtypes), version, check)

    def load_adapter(self, path: str, version: int, check: Any) -> list:
        return self.fleet.load_adapter(path, version, check)

    def policy_version(self) -> int:
        return self.fleet.policy_version

    def events(self) -> list:
        return list(self.fleet.events)

    def shutdown(self) -> None:
        self.fleet.shutdown()


def start_fleet_host(spec: FleetSpec, **kwargs: Any) -> Any:
    """The controller actor (no CPU of its own: its workers reserve theirs), ready to sample."""
    import ray

    handle = ray.remote(FleetHost).options(num_cpus=0, max_restarts=0).remote(spec, **kwargs)
    ray.get(handle.policy_version.remote())  # raises here if the fleet could not start
    return handle


def stop_fleet_host(handle: Any) -> None:
    import ray

    try:
        ray.get(handle.shutdown.remote())
    finally:
        ray.kill(handle)


class FleetClient:
    """A PolicyFleet over a FleetHost actor handle (picklable: it travels to every rank)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def generate_all(
        self, requests: Sequence[RolloutRequest], sampling: SamplingSpec | None = None
    ) -> list[list[Rollout]]:
        import ray

        return list(ray.get(self.handle.generate_all.remote(list(requests), sampling)))

    def sync_weights(self, state: Any, version: int, check: Any) -> list:
        import ray

        return list(ray.get(self.handle.sync_weights.remote(pack_state(state), version, tuple(check))))

    def sync_weight_buckets(self, buckets: Iterable[dict[str, Any]], version: int, check: Any) -> list:
        """Each bucket into the object store as it comes (then dropped), then one sync of them all."""
        import ray

        refs = [ray.put(pack_state(bucket)) for bucket in buckets if bucket]
        return list(ray.get(self.handle.sync_weight_refs.remote(refs, version, tuple(check))))

    def load_adapter(self, path: str | Path, version: int, check: Any) -> list:
        import ray

        return list(ray.get(self.handle.load_adapter.remote(str(path), version, tuple(check))))

    @property
    def policy_version(self) -> int:
        import ray

        return int(ray.get(self.handle.policy_version.remote()))
