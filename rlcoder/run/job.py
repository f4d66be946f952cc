"""`rlcoder train` as a job: the config's stages in order (sft, then grpo or ppo), on this machine or as
a Ray job on a cluster. The RL stage starts Ray, the reward service and the rollout fleet, wires the
RolloutSource (the fleet, or multi-turn episodes over it) and evaluates before and after. A killed run
resumes from its last complete checkpoint without losing or repeating a step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, RunConfig, load_config
from rlcoder.console import Log, log_stderr, pct
from rlcoder.learn.step import RLSetup
from rlcoder.records import Problem
from rlcoder.run.model_card import push_to_hub, write_card
from rlcoder.run.preflight import check_sft, check_train
from rlcoder.run.services import ray_session, reward_scorer, rollout_fleet, rollout_source
from rlcoder.run_dir import (
    SFT_STAGE,
    RunDir,
    StageDir,
    atomic_write_text,
    config_changes,
    next_run_dir,
    write_resolved,
)


def claim_run_dir(cfg: RunConfig, new_run: bool = False, log: Log = log_stderr) -> RunConfig:
    """The config of the run to start: as it is when cfg.run_dir is new or was started with the same
    config (a resume); with the next free <run_dir>-N when it was started with another config and
    `new_run` asks for a new one; else ConfigError saying what differs (a finished run's
    config.resolved.yaml is never rewritten with values that did not train it)."""
    changes = config_changes(cfg)
    if not changes:
        return cfg
    run = RunDir(cfg.run_dir)
    started = load_config(run.resolved_config)
    if changes == [f"learner.steps: {started.learner.steps} -> {cfg.learner.steps}"] and (
        cfg.learner.steps > started.learner.steps and not run.stage(cfg.stages[-1]).is_done()
    ):  # training an unfinished run for longer: the steps done so far ran under this very config
        log(f"[run] {cfg.run_dir}: learner.steps {started.learner.steps} -> {cfg.learner.steps}, resuming")
        return cfg
    target = next_run_dir(cfg.run_dir)
    if new_run:
        log(f"[run] {cfg.run_dir} was started with another config; this run goes to {target}")
        return cfg.model_copy(update={"run_dir": str(target)})
    state = "a finished run" if run.summary.is_file() or run.stage(cfg.stages[-1]).is_done() else "a run"
    raise ConfigError(
        f"run_dir {cfg.run_dir} holds {state} started with another config ({'; '.join(changes)}); "
        f"pass --new-run to start {target} instead, or set run_dir= to another folder"
    )


def run_train(cfg: RunConfig, log: Log = log_stderr) -> dict[str, Any]:
    """Run every stage that is not complete yet; returns the RL stage's before/after evaluation."""
    from rlcoder.run.memory_plan import check_fits, memory_plan, model_shape

    model_path = check_train(cfg, log)  # every input, before any stage starts
    shape = model_shape(cfg.model.name_or_path)
    if shape is not None:
        check_fits(memory_plan(cfg, shape), cfg)  # refuse before anything starts
    run = RunDir(cfg.run_dir)
    write_resolved(cfg, run.root)
    results: dict[str, Any] = {}
    final: Path | None = None
    for name in cfg.stages:
        stage = run.stage(name)
        if stage.is_done():
            log(f"[{name}] already complete: {stage.final}")
        elif name == SFT_STAGE:
            from rlcoder.learn.sft import run_sft

            log(f"[sft] from {model_path}")
            run_sft(cfg, model_path, stage.final)
            stage.mark_complete(stage.final)
        else:
            results = run_rl_stage(cfg, name, model_path, stage, log)
            stage.mark_complete(stage.final)
        model_path, final = str(stage.final), stage.final
    if results:
        atomic_write_text(run.summary, json.dumps(results, indent=2, sort_keys=True))
    elif run.summary.is_file():  # every stage was already complete: the card still shows the results
        results = json.loads(run.summary.read_text())
    if final is not None:  # the last stage's model: its card, and the push when asked for
        card = write_card(final, cfg, results)
        log(f"[run] model card: {card}")
        if cfg.model.push_to_hub:
            url = push_to_hub(final, cfg.model.push_to_hub)
            log(f"[run] pushed {final} to {cfg.model.push_to_hub}: {url}")
    return results


def run_sft_stage(cfg: RunConfig) -> Path:
    """`rlcoder sft`: the SFT stage alone, into <run_dir>/sft."""
    from rlcoder.learn.sft import run_sft

    model_path = check_sft(cfg)
    run = RunDir(cfg.run_dir)
    write_resolved(cfg, run.root)
    return run_sft(cfg, model_path, run.root / SFT_STAGE)


# ---------------------------------------------------------------------------------------------
# The RL stage


def run_rl_stage(cfg: RunConfig, algo: str, model_path: str, stage: StageDir, log: Log) -> dict[str, Any]:
    import torch

    from rlcoder.data.prompts import prompts_for
    from rlcoder.learn.loader import load_tokenizer

    if cfg.learner.torch_threads:
        torch.set_num_threads(cfg.learner.torch_threads)
    tokenizer = load_tokenizer(cfg, model_path)
    problems = {p.problem_id: p for p in select_train(cfg, stage, log)}
    prompts, too_long = prompts_for(problems.values(), tokenizer, cfg.data)
    limit = cfg.data.max_prompt_tokens
    log(f"[{algo}] {len(prompts)} train prompts, {len(too_long)} over {limit} tokens dropped")
    with ray_session(cfg), reward_scorer(cfg) as scorer, rollout_fleet(cfg, model_path) as fleet:
        if cfg.reward.timeout_s == "auto":
            problems = measure_references(cfg, problems, scorer, log)
        source = rollout_source(cfg, fleet, scorer, problems, tokenizer, log)
        rl = RLSetup(cfg, stage, tokenizer, problems, prompts, fleet, source, scorer, log)
        before = evaluate_once(rl, "before") if cfg.eval.around_rl else {}
        t0 = time.perf_counter()
        if cfg.learner.num_processes > 1:
            from rlcoder.run.learner_launch import train_on_ranks

            train_on_ranks(cfg, algo, model_path, stage, fleet, scorer)
        elif algo == "ppo":
            from rlcoder.learn.ppo import train_ppo

            train_ppo(rl, model_path)
        else:
            from rlcoder.learn.grpo import train_grpo

            train_grpo(rl, model_path)
        train_s = time.perf_counter() - t0
        after = evaluate_once(rl, "after") if cfg.eval.around_rl else {}
    result = {"algo": algo, "before": before, "after": after, "train_s": round(train_s, 1)}
    if before and after:
        log(
            f"[{algo}] pass rate on {cfg.data.train_source}: before {pct(before['pass_rate'])} -> "
            f"after {pct(after['pass_rate'])} ({cfg.eval.samples_per_problem} samples/problem, "
            f"temperature {cfg.rollout.temperature}); RL took {train_s:.0f}s"
        )
    return result


def measure_references(
    cfg: RunConfig, problems: dict[str, Problem], scorer: Any, log: Log
) -> dict[str, Problem]:
    """`reward.timeout_s: auto` needs each problem's reference runtime: measure those not stored."""
    from rlcoder.data.verification import with_reference_runtimes

    ceiling = cfg.reward.auto_timeout_ceiling_s
    measured, failed = with_reference_runtimes(list(problems.values()), scorer.score_sync, ceiling)
    limits = sorted(cfg.reward.limit_s(p.reference_runtime_s) for p in measured)
    log(
        f"[reward] timeout auto: {len(limits)} problems, limits {limits[0]:.2f}-{limits[-1]:.2f}s "
        f"(median {limits[len(limits) // 2]:.2f}s); {len(failed)} references failed their tests: {failed[:5]}"
    )
    return {p.problem_id: p for p in measured}


def select_train(cfg: RunConfig, stage: StageDir, log: Log) -> list[Problem]:
    """The train problems, filtered by their labelled pass rate when data.min/max_pass_rate is set;
    the counts are printed and written to <stage>/selection.json."""
    from rlcoder.data.labels import select_by_pass_rate
    from rlcoder.data.problems import load_problems

    problems = load_problems(cfg.data.train_source, limit=cfg.data.limit)
    data = cfg.data
    if data.min_pass_rate is None and data.max_pass_rate is None:
        return problems
    chosen = select_by_pass_rate(problems, data.min_pass_rate, data.max_pass_rate, data.unlabelled)
    counts = chosen.counts()
    log(
        f"[data] pass-rate selection [{data.min_pass_rate}, {data.max_pass_rate}] on {data.train_source}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    record = {
        **counts,
        "below": chosen.below,
        "above": chosen.above,
        "unlabelled_dropped": chosen.unlabelled_dropped,
    }
    atomic_write_text(stage.selection_file, json.dumps(record, indent=2, sort_keys=True))
    if not chosen.kept:
        raise ConfigError(f"data.min/max_pass_rate: no problem of {data.train_source} is in range ({counts})")
    return chosen.kept


def evaluate_once(rl: RLSetup, when: str) -> dict[str, Any]:
    """Evaluate the fleet's current policy on the train prompts, once (a resumed run reuses it):
    eval_<when>.json (the summary) and eval_<when>.jsonl (the scored samples)."""
    from rlcoder.eval.pass_at_k import PassCounts
    from rlcoder.eval.sampling import pass_rate_by_turn, sample_and_score
    from rlcoder.records import to_json

    path = rl.stage.eval_file(when)
    if path.is_file():
        return dict(json.loads(path.read_text()))
    n = rl.cfg.eval.samples_per_problem
    requests = [p.request() for p in rl.prompts[: rl.cfg.eval.problems]]
    rl.log(f"[eval] {when} RL: {len(requests)} problems x {n} samples")
    groups = sample_and_score(rl.source, rl.scorer, rl.problems, requests, rl.cfg, n)
    # the scored samples too, for `rlcoder report` / `rlcoder replay`
    atomic_write_text(path.with_suffix(".jsonl"), "".join(to_json(g) + "\n" for g in groups))
    counts = PassCounts.from_groups(groups)
    result = {
        "pass_rate": counts.pass_rate,
        "solved": counts.solved(),
        "problems": len(counts.samples),
        "infra_errors": counts.infra_errors,
        "bad_tests": counts.bad_tests,
    }
    by_turn = pass_rate_by_turn(groups, rl.cfg.rollout.turns)
    if by_turn:
        result["pass_rate_by_turn"] = {str(t): v for t, v in by_turn.items()}
        rl.log(
            f"[eval] {when} RL, pass rate after turn: "
            + "  ".join(f"{t}: {pct(v)}" for t, v in by_turn.items())
        )
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True))
    return result
