"""The learner's ranks as the code sees them: who this process is, and the few collectives the
learners need on plain numbers and records (sums for the global batch, records gathered to rank 0).
Every function is the identity on a single process (no process group), so one code path serves
`learner.num_processes` = 1 (in the driver) and N (Ray Train ranks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    d = _dist()
    return d.get_rank() if d else 0


def world_size() -> int:
    d = _dist()
    return d.get_world_size() if d else 1


def is_main() -> bool:
    """Rank 0: the one rank that writes the run directory, the metrics and the progress line."""
    return rank() == 0


def barrier() -> None:
    d = _dist()
    if d:
        d.barrier()


def sum_floats(values: Sequence[float]) -> list[float]:
    """Element-wise sum of `values` over all ranks (float64 on the wire)."""
    d = _dist()
    if not d:
        return [float(v) for v in values]
    import torch

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device())
    d.all_reduce(t, op=d.ReduceOp.SUM)
    return t.cpu().tolist()


def sum_dict(stats: dict[str, float]) -> dict[str, float]:
    """Each key summed over all ranks (every rank must hold the same keys, in any order)."""
    keys = sorted(stats)
    return dict(zip(keys, sum_floats([stats[k] for k in keys]), strict=True))


def gather_to_main(obj: Any) -> list[Any] | None:
    """[rank 0's obj, rank 1's, ...] on rank 0, None elsewhere (picklable records only)."""
    d = _dist()
    if not d:
        return [obj]
    out: list[Any] | None = [None] * d.get_world_size() if d.get_rank() == 0 else None
    d.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    d = _dist()
    if not d:
        return obj
    box = [obj]
    d.broadcast_object_list(box, src=0)
    return box[0]


def local_slice(items: Sequence[Any]) -> list[Any]:
    """This rank's contiguous share of a global list that divides evenly over the ranks."""
    n, w = len(items), world_size()
    if n % w:
        raise ValueError(f"{n} items do not split over {w} ranks")
    k = n // w
    return list(items[rank() * k : (rank() + 1) * k])


def _device() -> Any:
    import torch

    d = _dist()
    if d and d.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
