"""What every RL learner (GRPO, PPO) does around its update: sample a step's groups from the fleet,
score them and turn verdicts into rewards (dropping infra errors and too-stale samples), collect the
step's records and timings, and write them to the run directory with one progress line per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.problems import completion_item
from rlcoder.prompts import PromptText
from rlcoder.records import (
    Problem,
    RewardMode,
    Rollout,
    SamplingSpec,
    ScoredGroup,
    ScoreItem,
    Verdict,
    VerdictStatus,
    reward_from_verdict,
)
from rlcoder.run_dir import StageDir
from rlcoder.seams import RLSetup, RolloutSource, Scorer


@dataclass
class StepBuffer:
    """What one step produced: its rollouts, verdicts and rewards (index-aligned) and phase times."""

    rollouts: list[Rollout] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    rewards: list[float | None] = field(default_factory=list)
    stale: int = 0
    times_s: dict[str, float] = field(default_factory=dict)

    def add_time(self, phase: str, seconds: float) -> None:
        self.times_s[phase] = self.times_s.get(phase, 0.0) + seconds

    def clear(self) -> None:
        self.rollouts, self.verdicts, self.rewards = [], [], []
        self.times_s.clear()
        self.stale = 0


def group_scored(
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    rewards: Sequence[float | None],
    step: int | None = None,
) -> list[ScoredGroup]:
    """Regroup flat, problem-contiguous records into one ScoredGroup per prompt: a group starts where
    the problem changes or a rollout has sample_index 0. The group's step is `step`, else the rollouts'."""
    groups: list[ScoredGroup] = []
    for r, v, w in zip(rollouts, verdicts, rewards, strict=True):
        if not groups or groups[-1].problem_id != r.problem_id or r.sample_index == 0:
            groups.append(ScoredGroup(r.problem_id, [], [], [], step=r.step if step is None else step))
        groups[-1].rollouts.append(r)
        groups[-1].verdicts.append(v)
        groups[-1].rewards.append(w)
    return groups


def groups_of(buf: StepBuffer, step: int) -> list[ScoredGroup]:
    """A step's records, as they go to the run directory."""
    return group_scored(buf.rollouts, buf.verdicts, buf.rewards, step=step)


def step_summary(buf: StepBuffer) -> dict[str, float]:
    """Pass rate, verdict counts, dropped samples and throughput of one step (pure)."""
    n = len(buf.verdicts)
    counts = {s.value: 0 for s in VerdictStatus}
    for v in buf.verdicts:
        counts[v.status.value] += 1
    tokens = sum(len(r.completion_token_ids) for r in buf.rollouts)
    rollout_s = buf.times_s.get("rollout", 0.0)
    out: dict[str, float] = {f"verdict/{k}": float(c) for k, c in counts.items()}
    scored = n - counts["infra_error"]
    out["pass_rate"] = counts["pass"] / scored if scored else 0.0
    out["dropped/infra_error"] = float(counts["infra_error"])
    out["dropped/stale"] = float(buf.stale)
    out["completion_tokens"] = float(tokens)
    out["rollout_tokens_per_s"] = tokens / rollout_s if rollout_s > 0 else 0.0
    for phase, seconds in buf.times_s.items():
        out[f"time/{phase}_s"] = seconds
    return out


def progress_line(algo: str, row: dict[str, Any], max_steps: int) -> str:
    times = " ".join(
        f"{k[5:-2]} {row[k]:.1f}s"
        for k in ("time/rollout_s", "time/reward_s", "time/update_s", "time/sync_s")
        if k in row
    )
    return (
        f"[{algo}] step {row['step']}/{max_steps} reward {row.get('reward', float('nan')):.3f} "
        f"pass {row['pass_rate']:.1%} loss {row.get('loss', float('nan')):.4f} "
        f"tok/s {row['rollout_tokens_per_s']:.0f} | {times}"
    )


def finish_step(
    stage: StageDir, buf: StepBuffer, row: dict[str, Any], log: Callable[[str], None], algo: str, steps: int
) -> None:
    """Append a step's metrics row, print its progress line, and start the next step afresh."""
    stage.append_metrics(row)
    log(progress_line(algo, row, steps))
    buf.clear()


# ---------------------------------------------------------------------------------------------
# ROLLOUT and SCORE


def sampling_spec(cfg: RunConfig) -> SamplingSpec:
    ro = cfg.rollout
    return SamplingSpec(
        n=ro.samples_per_prompt, temperature=ro.temperature, top_p=ro.top_p, max_new_tokens=ro.max_new_tokens
    )


def sample_groups(
    fleet: RolloutSource,
    prompts: Sequence[PromptText],
    step: int,
    cfg: RunConfig,
    buf: StepBuffer,
    env: RLSetup | None = None,
) -> list[Rollout]:
    """One group of samples_per_prompt rollouts per prompt, flat and in prompt order (timed). With
    rollout.turns > 1 each rollout is an episode with execution feedback (rlcoder/multiturn.py), which
    needs the run's scorer, problems and tokenizer (`env`); its time counts as rollout time."""
    # ROLLOUT
    requests = [p.request(step) for p in prompts]
    t0 = time.perf_counter()
    if cfg.rollout.turns > 1:
        from rlcoder.multiturn import run_episodes

        if env is None:
            raise ValueError("rollout.turns > 1: multi-turn sampling needs the run's scorer and tokenizer")
        n = cfg.rollout.samples_per_prompt
        groups = run_episodes(fleet, env.scorer, env.problems, requests, env.tokenizer, cfg, n=n, log=env.log)
    else:
        groups = fleet.generate_all(requests, sampling_spec(cfg))
    rollouts = [r for group in groups for r in group]
    buf.add_time("rollout", time.perf_counter() - t0)
    buf.rollouts = rollouts
    return rollouts


def score_item(problem: Problem, rollout: Rollout, cfg: RunConfig) -> ScoreItem:
    return completion_item(
        problem,
        rollout.completion_text,
        item_id=rollout.rollout_id,
        timeout_s=cfg.reward.timeout_s,
        memory_mb=cfg.reward.memory_mb,
    )


async def score_rollouts(
    scorer: Scorer,
    problems: dict[str, Problem],
    rollouts: list[Rollout],
    version: int,
    cfg: RunConfig,
    buf: StepBuffer,
) -> list[float | None]:
    """Verdicts from the reward service and rewards from verdicts, into `buf`. None (drop the
    sample, never a 0 reward) for infra errors and for samples more than
    rollout.max_off_policy_lag updates older than the learner's `version`."""
    # SCORE
    mode = RewardMode(cfg.reward.mode)
    if rollouts and all(r.turns for r in rollouts):
        # multi-turn episodes were scored turn by turn: the final answer's verdict is the reward's
        from rlcoder.multiturn import episode_reward, final_verdict

        verdicts = [v for v in map(final_verdict, rollouts) if v is not None]
        fresh = [episode_reward(r, mode, cfg.rollout.turn_discount) for r in rollouts]
    else:
        items = [score_item(problems[r.problem_id], r, cfg) for r in rollouts]
        t0 = time.perf_counter()
        verdicts = await scorer.score(items)
        buf.add_time("reward", time.perf_counter() - t0)
        fresh = [reward_from_verdict(v, mode) for v in verdicts]
    rewards: list[float | None] = []
    for r, w in zip(rollouts, fresh, strict=True):
        if version - r.policy_version > cfg.rollout.max_off_policy_lag:
            buf.stale += 1
            rewards.append(None)
        else:
            rewards.append(w)
    buf.rollouts, buf.verdicts, buf.rewards = list(rollouts), verdicts, rewards
    return rewards


# ---------------------------------------------------------------------------------------------
# Model set-up both learners share


def lora_config(cfg: RunConfig, task_type: str | None = "CAUSAL_LM") -> Any:
    """peft's LoraConfig from ours, or None when LoRA is off."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    lc = cfg.lora
    return LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        target_modules=lc.target_modules,
        task_type=task_type,
    )


def check_sequence(
    prompt: PromptText, problem: Problem, tokenizer: Any, max_tokens: int = 48
) -> tuple[list[int], list[int]]:
    """A fixed prompt + reference-solution sequence that every weight sync is checked on."""
    from rlcoder.prompts import solution_message

    completion = tokenizer(solution_message(problem), add_special_tokens=False)["input_ids"][:max_tokens]
    return list(prompt.token_ids), list(completion)
