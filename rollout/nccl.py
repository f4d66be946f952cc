"""GPU weight sync: the fleet's side of vLLM's NCCL weight transfer. `FleetNcclClient` implements vLLM's
`VLLMWeightSyncClient` protocol over our `RolloutWorker` actors (plain dicts across Ray, never vLLM
objects), so the learner drives a broadcast with vLLM's own trainer engine:

    from vllm.distributed.weight_transfer.base import ModuleSource
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerInitInfo, NCCLTrainerWeightTransferEngine)
    world = 1 + fleet_workers * tensor_parallel_size
    trainer = NCCLTrainerWeightTransferEngine.trainer_init(
        NCCLTrainerInitInfo(master_address=ip, master_port=port, world_size=world, rank=0),
        client=fleet.nccl_client(), source=ModuleSource(policy))
    trainer.send_weights()                       # once per update: broadcast into every engine
    fleet.finish_nccl_sync(version, check)       # the post-sync logprob check, then the new version

The trainer is NCCL rank 0; worker i's engine ranks start at 1 + i * tensor_parallel_size.
"""

from __future__ import annotations

from typing import Any


class FleetNcclClient:
    """Fans each control-plane call out to every worker and waits for all of them."""

    def __init__(self, handles: list[Any], tensor_parallel_size: int) -> None:
        self.handles = list(handles)
        self.tensor_parallel_size = tensor_parallel_size

    def worker_init_infos(self, init_info: dict[str, Any]) -> list[dict[str, Any]]:
        """vLLM numbers an engine's ranks from `rank_offset`; separate engines must not overlap."""
        base = int(init_info.get("rank_offset", 1))
        return [
            dict(init_info, rank_offset=base + i * self.tensor_parallel_size)
            for i in range(len(self.handles))
        ]

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        import ray

        infos = self.worker_init_infos(init_info)
        ray.get([h.init_weight_transfer.remote(info) for h, info in zip(self.handles, infos, strict=True)])

    def start_weight_update(self) -> None:
        import ray

        ray.get([h.start_weight_update.remote() for h in self.handles])

    def update_weights(self, update_info: dict[str, Any]) -> None:
        import ray

        ray.get([h.receive_weights.remote(update_info) for h in self.handles])

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        import ray

        ray.get([h.finish_weight_update.remote() for h in self.handles])
