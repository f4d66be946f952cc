"""Benchmark: the reward service (HTTP, sandboxed fork server, both cores) with the isolated judge
(the default) and with the in-process harness, against the naive baseline KodCode-era harnesses use
(a `python -m pytest` subprocess per completion), on the same few hundred KodCode-style (completion,
test file) pairs, in the same run.

Prints scores/s of each, the isolated judge's ratio to the naive baseline (target >= 20x) and its
cost per item against the in-process path (target within 1.5x), p50/p99 latency of single-item
requests and the service overhead over the program's own run time, and verdict agreement.

    PYTHONPATH=. python bench/reward_bench.py --pairs 300 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from reward.extract import extract_code
from reward.service.client import RewardClient
from reward.service.launch import RewardService
from reward.testing import baseline, parity_pairs
from rlcoder.records import ScoreItem


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_naive(pairs: list[parity_pairs.Pair], workers: int) -> tuple[list[baseline.BaselineResult], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: baseline.run_pytest(extract_code(p.code) or "", p.test), pairs))
    return results, time.perf_counter() - started


def run_service(pairs: list[parity_pairs.Pair], url: str, concurrency: int, batch: int) -> tuple[list, float]:
    client = RewardClient(url, max_concurrency=concurrency, batch_size=batch)
    items = [ScoreItem(completion=p.code, test=p.test, item_id=p.name) for p in pairs]
    started = time.perf_counter()
    verdicts = asyncio.run(client.score(items))
    return verdicts, time.perf_counter() - started


def run_latency(pairs: list[parity_pairs.Pair], url: str) -> tuple[list[float], list[float]]:
    """One item per request, one request at a time: end-to-end latency and the part of it that is not
    the program's own run time (fork, sandbox setup, IPC, HTTP, extraction, verdict)."""
    client = RewardClient(url, max_concurrency=1, batch_size=1)
    latencies, overheads = [], []

    async def main() -> None:
        for p in pairs:
            item = ScoreItem(completion=p.code + "\n# latency probe\n", test=p.test)
            started = time.perf_counter()
            (verdict,) = await client.score([item])
            elapsed_ms = (time.perf_counter() - started) * 1000
            latencies.append(elapsed_ms)
            overheads.append(elapsed_ms - verdict.duration_ms)

    asyncio.run(main())
    return latencies, overheads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="service workers (cores)")
    parser.add_argument("--naive-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="client requests in flight")
    parser.add_argument("--batch", type=int, default=16, help="items per request")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)

    pairs = parity_pairs.bench_pairs(args.pairs)
    load_before = os.getloadavg()
    fallback = sum(1 for p in pairs if p.name.split(":")[0] in parity_pairs.FALLBACK_TEMPLATES)
    print(
        f"{len(pairs)} pairs from {len(parity_pairs.TEMPLATES)} templates ({fallback} need real pytest); "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )
    naive, naive_s = run_naive(pairs, args.naive_workers)
    print(f"naive: {naive_s:.1f} s", flush=True)
    runs = {}
    for judge in ("isolated", "in_process"):
        with RewardService(workers=args.workers, extra_args=["--judge", judge]) as svc:
            run_service(pairs[:20], svc.url, args.concurrency, args.batch)  # warm connection and plan cache
            verdicts, service_s = run_service(pairs, svc.url, args.concurrency, args.batch)
            latencies, overheads = run_latency(parity_pairs.bench_pairs(args.latency_samples), svc.url)
        runs[judge] = summarize(pairs, naive, naive_s, verdicts, service_s, latencies, overheads)
        runs[judge]["judges"] = dict(collections.Counter(v.judge for v in verdicts))
        print(f"{judge}: {service_s:.1f} s", flush=True)
    figures = {
        **runs["isolated"],
        "in_process": runs["in_process"],
        "isolated_cost_vs_in_process": round(
            runs["in_process"]["service_scores_per_s"] / runs["isolated"]["service_scores_per_s"], 2
        ),
    }
    figures["load_average"] = [round(x, 2) for x in (load_before[0], os.getloadavg()[0])]
    figures["workers"] = args.workers
    report(figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    ok = (
        figures["ratio"] >= 20
        and figures["isolated_cost_vs_in_process"] <= 1.5
        and figures["status_agreement"] == 1.0
        and figures["in_process"]["status_agreement"] == 1.0
    )
    return 0 if ok else 1


def summarize(pairs, naive, naive_s, verdicts, service_s, latencies, overheads) -> dict:
    n = len(pairs)
    same_status = [v.status.value == b.status for v, b in zip(verdicts, naive, strict=True)]
    same_counts = [(v.passed, v.total) == (b.passed, b.total) for v, b in zip(verdicts, naive, strict=True)]
    same_reward = [
        (v.status.value == "pass") == (b.status == "pass") for v, b in zip(verdicts, naive, strict=True)
    ]
    disagreements = [
        (p.name, b.status, v.status.value, v.detail[:120])
        for p, b, v, s in zip(pairs, naive, verdicts, same_status, strict=True)
        if not s
    ]
    return {
        "pairs": n,
        "naive_scores_per_s": round(n / naive_s, 2),
        "service_scores_per_s": round(n / service_s, 2),
        "ratio": round(naive_s / service_s, 1),
        "latency_p50_ms": round(percentile(latencies, 50), 1),
        "latency_p99_ms": round(percentile(latencies, 99), 1),
        "overhead_p50_ms": round(percentile(overheads, 50), 1),
        "overhead_p99_ms": round(percentile(overheads, 99), 1),
        "naive_latency_p50_ms": round(statistics.median(b.wall_ms for b in naive), 1),
        "status_agreement": sum(same_status) / n,
        "count_agreement": sum(same_counts) / n,
        "reward_agreement": sum(same_reward) / n,
        "verdict_mix": {
            s: sum(1 for v in verdicts if v.status.value == s)
            for s in sorted({v.status.value for v in verdicts})
        },
        "disagreements": disagreements[:10],
    }


def report(f: dict) -> None:
    print(f"pairs                    {f['pairs']}")
    print(
        f"naive subprocess+pytest  {f['naive_scores_per_s']:8.2f} scores/s  "
        f"(p50 {f['naive_latency_p50_ms']} ms each)"
    )
    ip = f["in_process"]
    print(f"isolated judge (HTTP)    {f['service_scores_per_s']:8.2f} scores/s  ({f['workers']} workers)")
    print(f"in-process judge (HTTP)  {ip['service_scores_per_s']:8.2f} scores/s")
    print(f"ratio isolated / naive   {f['ratio']:8.1f}x   (target >= 20x; in-process {ip['ratio']}x)")
    print(
        f"isolated cost per item   {f['isolated_cost_vs_in_process']:8.2f}x the in-process path "
        "(target <= 1.5x)"
    )
    print(f"judges (isolated run)    {f['judges']}")
    print(
        f"single-item latency      p50 {f['latency_p50_ms']} ms, p99 {f['latency_p99_ms']} ms "
        f"(in-process p50 {ip['latency_p50_ms']}, p99 {ip['latency_p99_ms']})"
    )
    print(
        f"service overhead         p50 {f['overhead_p50_ms']} ms, p99 {f['overhead_p99_ms']} ms   "
        "(target p99 < 50 ms)"
    )
    print(
        f"verdict agreement        status {f['status_agreement']:.1%}, "
        f"passed/total {f['count_agreement']:.1%}, "
        f"reward {f['reward_agreement']:.1%}  (in-process: status {ip['status_agreement']:.1%})"
    )
    print(f"verdicts                 {f['verdict_mix']}")
    print(f"load average             {f['load_average']} (shared machine)")
    for d in f["disagreements"]:
        print("  disagreement:", d)


if __name__ == "__main__":
    sys.exit(main())
