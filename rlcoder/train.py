"""`rlcoder train`: the whole run as one job. Runs the config's stages in order (sft, then grpo),
on this machine or as a Ray job on a cluster; a killed run resumes from its last complete
checkpoint without losing or repeating a step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rlcoder.config import RunConfig, write_resolved
from rlcoder.infra import ray_session, reward_scorer, rollout_fleet
from rlcoder.run_dir import RunDir, StageDir, atomic_write_text
from rlcoder.seams import RLSetup

Log = Callable[[str], None]


def log_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from rlcoder.cli import config_from_args

    cfg = config_from_args(args)  # validated before any heavy import
    run_train(cfg)
    return 0


def run_train(cfg: RunConfig, log: Log = log_stderr) -> dict[str, Any]:
    """Run every stage that is not complete yet; returns the RL stage's before/after evaluation."""
    from rlcoder.models import resolve_model_path

    run = RunDir(cfg.run_dir)
    write_resolved(cfg, run.root)
    model_path = resolve_model_path(cfg.model.name_or_path)
    results: dict[str, Any] = {}
    for name in cfg.stages:
        stage = run.stage(name)
        if stage.is_done():
            log(f"[{name}] already complete: {stage.final}")
        elif name == "sft":
            from rlcoder.sft import run_sft

            log(f"[sft] from {model_path}")
            run_sft(cfg, model_path, stage.final)
            stage.mark_complete(stage.final)
        else:
            results = run_rl_stage(cfg, name, model_path, stage, log)
            stage.mark_complete(stage.final)
        model_path = str(stage.final)
    summary = run.root / "summary.json"
    if results:
        atomic_write_text(summary, json.dumps(results, indent=2, sort_keys=True))
    return results


# ---------------------------------------------------------------------------------------------
# The RL stage


def run_rl_stage(cfg: RunConfig, algo: str, model_path: str, stage: StageDir, log: Log) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from rlcoder.problems import load_problems
    from rlcoder.prompts import prompts_for

    if cfg.learner.torch_threads:
        torch.set_num_threads(cfg.learner.torch_threads)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    problems = {p.problem_id: p for p in load_problems(cfg.data.train_source, limit=cfg.data.limit)}
    prompts, too_long = prompts_for(problems.values(), tokenizer, cfg.data)
    limit = cfg.data.max_prompt_tokens
    log(f"[{algo}] {len(prompts)} train prompts, {len(too_long)} over {limit} tokens dropped")
    with ray_session(cfg), reward_scorer(cfg) as scorer, rollout_fleet(cfg, model_path) as fleet:
        rl = RLSetup(cfg, stage, tokenizer, problems, prompts, fleet, scorer, log)
        before = evaluate_once(rl, "before") if cfg.eval.around_rl else {}
        t0 = time.perf_counter()
        if algo == "ppo":
            from rlcoder.ppo import train_ppo

            train_ppo(rl, model_path)
        else:
            from rlcoder.grpo import train_grpo

            train_grpo(rl, model_path)
        train_s = time.perf_counter() - t0
        after = evaluate_once(rl, "after") if cfg.eval.around_rl else {}
    result = {"algo": algo, "before": before, "after": after, "train_s": round(train_s, 1)}
    if before and after:
        log(
            f"[{algo}] pass rate on {cfg.data.train_source}: before {before['pass_rate']:.1%} -> "
            f"after {after['pass_rate']:.1%} ({cfg.eval.samples_per_problem} samples/problem, "
            f"temperature {cfg.rollout.temperature}); RL took {train_s:.0f}s"
        )
    return result


def evaluate_once(rl: RLSetup, when: str) -> dict[str, Any]:
    """Evaluate the fleet's current policy on the train prompts, once (a resumed run reuses it):
    eval_<when>.json (the summary) and eval_<when>.jsonl (the scored samples)."""
    from rlcoder.evaluate import EvalSummary, pass_rate_by_turn, sample_and_score
    from rlcoder.records import to_json

    path = rl.stage.root / f"eval_{when}.json"
    if path.is_file():
        return dict(json.loads(path.read_text()))
    n = rl.cfg.eval.samples_per_problem
    requests = [p.request() for p in rl.prompts]
    rl.log(f"[eval] {when} RL: {len(requests)} problems x {n} samples")
    groups = sample_and_score(rl.fleet, rl.scorer, rl.problems, requests, rl.cfg, n, rl.tokenizer)
    # the scored samples too, for `rlcoder report` / `rlcoder replay`
    atomic_write_text(path.with_suffix(".jsonl"), "".join(to_json(g) + "\n" for g in groups))
    summary = EvalSummary.from_groups(groups)
    result = {
        "pass_rate": summary.pass_rate,
        "solved": summary.solved(),
        "problems": len(summary.samples),
        "infra_errors": summary.infra_errors,
    }
    by_turn = pass_rate_by_turn(groups, rl.cfg.rollout.turns)
    if by_turn:
        result["pass_rate_by_turn"] = {str(t): v for t, v in by_turn.items()}
        rl.log(
            f"[eval] {when} RL, pass rate after turn: "
            + "  ".join(f"{t}: {v:.1%}" for t, v in by_turn.items())
        )
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True))
    return result
