"""The reward service inside a Ray job on a cluster: a Ray actor (placed on a node with CPUs to
spare) starts the HTTP service on its node and hands back the URL the learner's client uses."""

from __future__ import annotations

from typing import Any


class RewardServiceActor:
    """Wrapped with `ray.remote` by `start_reward_actor`; lives as long as the job holds it."""

    def __init__(self, workers: int, port: int) -> None:
        import ray

        from reward.service.launch import RewardService

        self._service = RewardService(host=ray.util.get_node_ip_address(), port=port, workers=workers)
        self._service.start()

    def url(self) -> str:
        return self._service.url

    def stop(self) -> None:
        self._service.stop()


def start_reward_actor(workers: int, port: int, num_cpus: float) -> tuple[Any, str]:
    """Start the actor (reserving `num_cpus` of the cluster for it) and return (handle, url)."""
    import ray

    actor = ray.remote(RewardServiceActor).options(num_cpus=num_cpus, max_restarts=0).remote(workers, port)
    return actor, ray.get(actor.url.remote())
