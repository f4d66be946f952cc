"""Benchmark: `rlcoder replay` throughput on a few thousand stored rollouts (a synthetic run dir of the
bundled problems: reference solutions, wrong answers, syntax errors, prose), against two baselines in
the same run: the same replay sequentially (one completion per request, one request at a time), and
the naive harness (one `python -m pytest` subprocess per completion) on a sample.

Each phase gets a fresh reward service, so its result cache never answers for another phase. Prints
completions re-scored per second for each, the ratios, and how many replayed verdicts reproduce the
recorded ones (status, passed, total).

    PYTHONPATH=. python bench/replay_bench.py --steps 6 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reward.extract import extract_code
from reward.service.client import RewardClient
from reward.service.launch import RewardService
from reward.testing import baseline
from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.eval.replay import diff_groups, next_replay_path, pair_with_replay, replay_groups
from rlcoder.eval.stored_runs import ReadLog, read_stored
from rlcoder.eval.synthetic_run import score_groups, synthetic_groups, write_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="steps of 128 problems x 4 samples each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="service workers (cores)")
    parser.add_argument("--sequential", type=int, default=300, help="completions in the sequential baseline")
    parser.add_argument("--naive", type=int, default=60, help="completions in the subprocess baseline")
    parser.add_argument("--chunk", type=int, default=256, help="replay chunk (completions)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)

    problems = {p.problem_id: p for p in bundled_problems("train")}
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        root = Path(tmp) / "run"
        cfg = load_config(None, [f"run_dir={root}", "data.train_source=bundled:train"])
        groups = synthetic_groups(list(problems.values()), args.steps, unique=True)
        n = sum(len(g.rollouts) for g in groups)
        print(
            f"{n} stored rollouts ({len(groups)} groups); load average {os.getloadavg()[0]:.2f}", flush=True
        )

        with RewardService(workers=args.workers) as svc, RewardClient(svc.url) as client:
            t0 = time.perf_counter()
            score_groups(groups, problems, client.score_sync, cfg)
            print(f"recorded in {time.perf_counter() - t0:.1f} s", flush=True)
        write_run(root, cfg, groups)

        out = next_replay_path(root)
        with RewardService(workers=args.workers) as svc, RewardClient(svc.url) as client:
            client.score_sync([])  # the connection pool and event loop are not part of the measurement
            stats = replay_groups(
                read_stored(root, ReadLog()),
                problems,
                client.score_sync,
                cfg,
                out,
                chunk_completions=args.chunk,
            )
        diff = diff_groups(pair_with_replay(read_stored(root, ReadLog()), out), problems)
        replay_rate = stats.completions / stats.seconds

        rollouts = [(g.problem_id, r) for g in groups for r in g.rollouts]
        sample = rollouts[:: max(1, len(rollouts) // args.sequential)][: args.sequential]
        from rlcoder.data.verification import rollout_item

        with (
            RewardService(workers=args.workers) as svc,
            RewardClient(svc.url, max_concurrency=1, batch_size=1) as c,
        ):
            t0 = time.perf_counter()
            for pid, r in sample:
                c.score_sync([rollout_item(problems[pid], r, cfg.reward)])
            seq_rate = len(sample) / (time.perf_counter() - t0)

        naive_sample = rollouts[:: max(1, len(rollouts) // args.naive)][: args.naive]

        def naive_one(pair: tuple) -> baseline.BaselineResult:
            pid, r = pair
            return baseline.run_pytest(extract_code(r.completion_text) or "", problems[pid].test)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(naive_one, naive_sample))
        naive_rate = len(naive_sample) / (time.perf_counter() - t0)

    figures = {
        "stored_rollouts": n,
        "replay_completions_per_s": round(replay_rate, 1),
        "sequential_completions_per_s": round(seq_rate, 1),
        "naive_subprocess_completions_per_s": round(naive_rate, 2),
        "ratio_vs_sequential": round(replay_rate / seq_rate, 1),
        "ratio_vs_naive": round(replay_rate / naive_rate, 1),
        "reproduced": f"{diff.compared - diff.changed}/{diff.compared}",
        "transitions": diff.transitions,
        "workers": args.workers,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(
        f"replay (batched, {args.chunk} per chunk, {args.workers} workers): {replay_rate:.1f} completions/s "
        f"over {stats.completions}\n"
        f"sequential (1 per request, 1 in flight): {seq_rate:.1f} completions/s over {len(sample)} "
        f"-> replay is {figures['ratio_vs_sequential']}x\n"
        f"naive (a pytest subprocess each, {args.workers} threads): {naive_rate:.2f} completions/s over "
        f"{len(naive_sample)} -> replay is {figures['ratio_vs_naive']}x\n"
        f"verdicts reproduced: {figures['reproduced']} {diff.transitions or ''}",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if diff.changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
