"""Run a function on N gloo ranks on this machine (torch.multiprocessing, 127.0.0.1), one torch thread
each, and hand back each rank's picklable result: the CPU stand-in for Ray Train's worker group in
tests that check what the ranks compute, not how Ray places them."""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, world: int, port: int, out: str, fn: Callable[..., Any], args: tuple) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = fn(*args)
        Path(out, f"{rank}.pkl").write_bytes(pickle.dumps(result))
    finally:
        if world > 1:
            dist.destroy_process_group()


def run_ranks(world: int, fn: Callable[..., Any], *args: Any) -> list[Any]:
    """fn(*args) on `world` ranks (world 1: no process group at all, as the in-process learner);
    fn must be importable (module level). Returns the results in rank order."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_entry, args=(world, _free_port(), out, fn, args), nprocs=world, join=True)
        return [pickle.loads(Path(out, f"{r}.pkl").read_bytes()) for r in range(world)]
