"""FSDP2 for our own learner (PPO) and the sharded weight gather both learners sync with. Parameters
are DTensors sharded over the ranks' mesh (gloo on CPU, nccl on GPU); `fully_shard` runs on either.

The gather walks the state dict in the same order on every rank and calls `full_tensor()` on the
default stream, one tensor after another (all ranks in lockstep), synchronizing after each bucket:
vLLM's packed sender gathers on a side stream on rank 0 only, which deadlocks past two FSDP ranks.
Only rank 0 keeps what was gathered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rlcoder.learn import dist


def shard(model: Any) -> Any:
    """fully_shard every decoder layer, then the root (one all-gather per layer in forward)."""
    from torch.distributed.fsdp import fully_shard

    for layer in decoder_layers(model):
        fully_shard(layer)
    fully_shard(model)
    return model


def decoder_layers(model: Any) -> list[Any]:
    """The repeated blocks of a transformers model (through a peft wrapper and a critic's backbone)."""
    import torch

    found = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    layers = [m for m in found if type(m[0]).__name__.endswith("DecoderLayer")]
    return [layer for ml in layers for layer in ml]


def is_sharded(t: Any) -> bool:
    return hasattr(t, "full_tensor")


def _full(t: Any) -> Any:
    return t.full_tensor() if is_sharded(t) else t


def gathered_buckets(
    state: dict[str, Any], bucket_bytes: int = 256 << 20, keep: Any = None
) -> Iterator[dict[str, Any]]:
    """Yield, on rank 0, the full (unsharded) tensors of `state` on the CPU in buckets of at most
    ~bucket_bytes; other ranks take part in every gather and get empty buckets. `keep(name)`
    filters names (the same on every rank). Called on every rank in lockstep."""
    import torch

    main = dist.is_main()
    bucket: dict[str, Any] = {}
    size = 0
    for name, tensor in state.items():
        if keep is not None and not keep(name):
            continue
        full = _full(tensor.detach())
        if main:
            bucket[name] = full.to("cpu", copy=full.device.type != "cpu").clone()
            size += full.numel() * full.element_size()
        del full
        if size >= bucket_bytes:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            yield bucket
            bucket, size = {}, 0
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    if bucket or not main:
        yield bucket


def gather_full_state(model: Any, keep: Any = None) -> dict[str, Any]:
    """The whole unsharded state dict on rank 0 ({} elsewhere); every rank must call it."""
    out: dict[str, Any] = {}
    for bucket in gathered_buckets(model.state_dict(), keep=keep):
        out.update(bucket)
    return out


def is_adapter_key(name: str) -> bool:
    return "lora_" in name


def clip_grad_norm(params: list[Any], max_norm: float) -> float:
    """The global gradient norm (over every rank's shards), clipped to max_norm."""
    import torch

    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(_full(norm))


def optimizer_state(container: Any, optimizer: Any) -> dict[str, Any]:
    """The optimizer's full state dict (rank 0 holds it all; every rank must call)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(
        container, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def load_optimizer_state(container: Any, optimizer: Any, state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(
        container, optimizer, optim_state_dict=state, options=StateDictOptions(full_state_dict=True)
    )
