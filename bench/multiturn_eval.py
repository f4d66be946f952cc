"""Measurement: pass rate at turn 1 and after each execution-feedback turn (OpenCodeInterpreter's
"+ execution feedback" column) for the tiny model after SFT, with and without feedback conversations
in the SFT data. No Ray: one transformers engine in process, the real reward service on 127.0.0.1.

    PYTHONPATH=. python bench/multiturn_eval.py --limit 32 --samples 4 --turns 3 [--feedback-sft]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reward.service.client import RewardClient
from reward.service.launch import RewardService
from rlcoder.config import load_config
from rlcoder.data.problems import load_problems
from rlcoder.data.prompts import prompts_for
from rlcoder.env.episodes import groups_after_turn, run_episodes
from rlcoder.eval.pass_at_k import PassCounts
from rlcoder.learn.sft import run_sft, sft_complete
from rlcoder.records import EngineSpec
from rlcoder.run.model_paths import resolve_model_path
from rlcoder.specs import sampling_spec
from rollout.worker import RolloutWorker

LAPTOP = Path(__file__).resolve().parents[1] / "configs" / "laptop.yaml"


class WorkerFleet:
    """`generate_all` over one in-process RolloutWorker (the Ray fleet's interface, without Ray)."""

    def __init__(self, worker: RolloutWorker) -> None:
        self.worker = worker

    def generate_all(self, requests, sampling):
        flat = self.worker.generate(list(requests), sampling)
        return [flat[i * sampling.n : (i + 1) * sampling.n] for i in range(len(requests))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/multiturn-bench")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--feedback-sft", action="store_true", help="add conversations:feedback to the SFT data")
    ap.add_argument("--sources", nargs="+", default=["bundled:train", "bundled:eval"])
    args = ap.parse_args()
    stages = (
        "[bundled:train, conversations:feedback:bundled:train]" if args.feedback_sft else "[bundled:train]"
    )
    out = Path(args.out) / ("feedback-sft" if args.feedback_sft else "plain-sft")
    cfg = load_config(
        LAPTOP,
        [
            f"run_dir={out}",
            f"data.limit={args.limit}",
            f"rollout.turns={args.turns}",
            "rollout.feedback_max_chars=600",
            "model.max_model_len=2048",
            "learner.sft.max_length=1024",
            f"learner.sft.stages={stages}",
        ],
    )
    t0 = time.perf_counter()
    if not sft_complete(out / "sft"):
        run_sft(cfg, resolve_model_path("tiny"), out / "sft")
    print(f"sft: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out / "sft"))
    spec = EngineSpec("transformers", str(out / "sft"), max_model_len=cfg.model.max_model_len, seed=cfg.seed)
    fleet = WorkerFleet(RolloutWorker(spec, "bench", sync_tolerance=0.05))
    print(
        "| problems | samples | " + " | ".join(f"turn {t}" for t in range(1, args.turns + 1)) + " | seconds |"
    )
    with RewardService(workers=cfg.reward.workers) as svc:
        client = RewardClient(svc.url)
        for source in args.sources:
            problems = load_problems(source, limit=args.limit)
            assert isinstance(problems, list)
            prompts, _ = prompts_for(problems, tokenizer, cfg.data)
            requests = [p.request() for p in prompts]
            t0 = time.perf_counter()
            groups = run_episodes(
                fleet,
                client,
                {p.problem_id: p for p in problems},
                requests,
                tokenizer,
                cfg,
                sampling_spec(cfg, args.samples),
            )
            rates = [
                PassCounts.from_groups(groups_after_turn(groups, t)).pass_rate
                for t in range(1, args.turns + 1)
            ]
            cells = " | ".join(f"{r:.1%}" for r in rates)
            print(
                f"| {source} ({len(requests)}) | {args.samples} | {cells} | {time.perf_counter() - t0:.0f} |",
                flush=True,
            )
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
