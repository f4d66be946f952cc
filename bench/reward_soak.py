"""Soak run: 10,000 sandboxed executions through the HTTP service, a mix of ordinary pairs and hostile
programs (forks, memory and output bombs, frame inspection, tampering, short timeouts). Samples the
memory of the server and the fork server as it goes, and checks at the end that no process, scratch
dir or file of the sandbox is left and that the service still answers.

    PYTHONPATH=. python bench/reward_soak.py --executions 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import httpx

from reward.sandbox import isolation
from reward.service.client import RewardClient
from reward.service.launch import RewardService
from reward.testing import parity_pairs, samples
from rlcoder.records import ScoreItem, VerdictStatus

# Hostile programs that finish fast; slow ones (timeouts) are mixed in rarely, with a short limit.
FAST_HOSTILE = [
    h
    for h in samples.HOSTILE
    if not h.needs_guard_off
    and h.name
    not in {
        "infinite_loop",
        "sleep_past_limit",
        "c_level_pow",
        "regex_backtracking",
        "memory_growth",
        "stderr_flood",
    }
]
SLOW_HOSTILE = [h for h in samples.HOSTILE if h.name in {"infinite_loop", "sleep_past_limit"}]


def make_items(start: int, count: int) -> list[tuple[ScoreItem, frozenset[str] | None]]:
    """Unique items (no cache hits): 80% ordinary pairs, 19% fast hostile, 1% timeouts."""
    ordinary = parity_pairs.bench_pairs(count, fallback_every=100)
    out: list[tuple[ScoreItem, frozenset[str] | None]] = []
    for k in range(count):
        i = start + k
        tag = f"\n# soak {i}\n"
        if i % 100 == 99:
            h = SLOW_HOSTILE[(i // 100) % len(SLOW_HOSTILE)]
            out.append(
                (
                    ScoreItem(completion=h.code + tag, test=h.test, timeout_s=0.3, item_id=h.name),
                    h.allowed_for("isolated"),
                )
            )
        elif i % 5 == 4:
            h = FAST_HOSTILE[(i // 5) % len(FAST_HOSTILE)]
            item = ScoreItem(
                completion=h.code + tag,
                test=h.test,
                timeout_s=h.timeout_s,
                memory_mb=h.memory_mb,
                item_id=h.name,
            )
            out.append((item, h.allowed | h.allowed_for("isolated")))  # either judge may decide
        else:
            p = ordinary[k]
            out.append((ScoreItem(completion=p.code + tag, test=p.test, item_id=p.name), None))
    return out


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sandbox_processes(fs_pid: int) -> list[int]:
    base = isolation.sandbox_uid(fs_pid, 0)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = int(f.read().split("Uid:")[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue
            if base <= uid < base + isolation.MAX_SLOTS:
                found.append(int(entry))
    return found


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def busy_children(fs_pid: int, zygote_pid: int) -> list[int]:
    """The fork server's children besides the program zygote, and the zygote's (program processes)."""
    return [p for p in children_of(fs_pid) if p != zygote_pid] + (
        children_of(zygote_pid) if zygote_pid else []
    )


def wait_idle(fs_pid: int, zygote_pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (busy_children(fs_pid, zygote_pid) or sandbox_processes(fs_pid)):
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--chunk", type=int, default=500, help="items per sampling interval")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    samples_out: list[dict[str, float]] = []
    wrong: list[tuple[str, str]] = []
    started = time.perf_counter()
    with RewardService(workers=args.workers, queue_limit=4096) as svc:
        health = httpx.get(f"{svc.url}/healthz").json()
        fs_pid, zygote_pid = int(health["forkserver_pid"]), int(health.get("zygote_pid") or 0)
        client = RewardClient(svc.url, max_concurrency=8, batch_size=25)
        counts: dict[str, int] = {}
        for start in range(0, args.executions, args.chunk):
            batch = make_items(start, min(args.chunk, args.executions - start))
            verdicts = client.score_sync([item for item, _ in batch])
            for (item, allowed), verdict in zip(batch, verdicts, strict=True):
                counts[verdict.status.value] = counts.get(verdict.status.value, 0) + 1
                if allowed is not None and verdict.status.value not in allowed:
                    wrong.append((item.item_id, verdict.status.value))
            done = start + len(batch)
            wait_idle(fs_pid, zygote_pid)  # verdicts precede the reaping of their runs: sample a quiet server
            point = {
                "executions": done,
                "server_rss_mb": round(rss_mb(svc.pid), 1),
                "forkserver_rss_mb": round(rss_mb(fs_pid), 1),
                "forkserver_fds": fd_count(fs_pid),
                "zygote_rss_mb": round(rss_mb(zygote_pid), 1) if zygote_pid else 0.0,
                "zygote_fds": fd_count(zygote_pid) if zygote_pid else 0,
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            samples_out.append(point)
            print(json.dumps(point), flush=True)
        wait_idle(fs_pid, zygote_pid)
        leftover = sandbox_processes(fs_pid)
        children = busy_children(fs_pid, zygote_pid)
        scratch = os.listdir(f"/proc/{fs_pid}/root/tmp/rlsbx")
        final = client.score_sync(
            [ScoreItem(completion=samples.GOOD_ADD + "# final\n", test=samples.ADD_TEST)]
        )[0]
        client.close()
    result = summarize(samples_out, counts, wrong, leftover, children, scratch, final.status)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"result": result, "samples": samples_out}, f, indent=2)
    return 0 if result["ok"] else 1


def summarize(points, counts, wrong, leftover, children, scratch, final_status) -> dict:
    settled = points[len(points) // 5 :] or points  # after warm-up (caches fill, allocator settles)
    growth = {
        key: round(settled[-1][key] - settled[0][key], 1)
        for key in ("server_rss_mb", "forkserver_rss_mb", "forkserver_fds", "zygote_rss_mb", "zygote_fds")
    }
    result = {
        "executions": points[-1]["executions"] if points else 0,
        "elapsed_s": points[-1]["elapsed_s"] if points else 0,
        "verdicts": counts,
        "hostile_wrong_verdicts": wrong[:20],
        "leftover_sandbox_processes": leftover,
        "forkserver_children_when_idle": children,
        "leftover_scratch_dirs": scratch,
        "growth_after_warmup": growth,
        "rss_first_last_mb": {
            k: (points[0][k], points[-1][k]) for k in ("server_rss_mb", "forkserver_rss_mb")
        },
        "final_item": final_status.value,
    }
    result["ok"] = (
        not wrong
        and not leftover
        and not children
        and not scratch
        and final_status is VerdictStatus.PASS
        and growth["forkserver_rss_mb"] < 5
        and growth["server_rss_mb"] < 30
        and growth["forkserver_fds"] == 0
        and growth["zygote_rss_mb"] < 5
        and growth["zygote_fds"] == 0
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
