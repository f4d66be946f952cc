"""The RL step plumbing GRPO and PPO share: what a stage works with (RLSetup), the step's record
(rollouts, verdicts, rewards, phase times) with its ROLLOUT and SCORE phases, and how a finished step
reaches the run directory and the console (one metrics row, one progress line)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.console import progress_line
from rlcoder.data.prompts import PromptText, solution_message
from rlcoder.env.scoring import rewards_for, verdicts_for
from rlcoder.records import Problem, Rollout, ScoredGroup, Verdict, VerdictStatus, group_scored, pass_rate
from rlcoder.run_dir import StageDir
from rlcoder.seams import PolicyFleet, RolloutSource, Scorer
from rlcoder.specs import sampling_spec


@dataclass
class RLSetup:
    """Everything an RL stage works with, started and wired by the train job (rlcoder.run)."""

    cfg: RunConfig
    stage: StageDir
    tokenizer: Any
    problems: dict[str, Problem]  # by problem_id
    prompts: list[PromptText]  # one per train problem that fits max_prompt_tokens
    fleet: PolicyFleet  # the engines whose weights the learner updates
    source: RolloutSource  # what a step samples from: the fleet, or multi-turn episodes over it
    scorer: Scorer
    log: Callable[[str], None]


@dataclass
class StepRecord:
    """What one step produced: its rollouts, verdicts and rewards (index-aligned) and phase times.
    Filled by `sample` and `score`, written and cleared by `finish`."""

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

    # ROLLOUT
    def sample(self, rl: RLSetup, prompts: Sequence[PromptText], step: int) -> list[Rollout]:
        """One group of samples_per_prompt rollouts per prompt, flat and in prompt order (timed)."""
        t0 = time.perf_counter()
        groups = rl.source.generate_all([p.request(step) for p in prompts], sampling_spec(rl.cfg))
        self.rollouts = [r for group in groups for r in group]
        self.add_time("rollout", time.perf_counter() - t0)
        return self.rollouts

    # SCORE
    async def score(self, rl: RLSetup, rollouts: list[Rollout], version: int) -> list[float | None]:
        """Verdicts and rewards for `rollouts`. None (drop the sample, never a 0 reward) for infra
        errors and for samples more than rollout.max_off_policy_lag updates older than `version`."""
        t0 = time.perf_counter()
        verdicts = await verdicts_for(rl.scorer, rl.problems, rollouts, rl.cfg)
        self.add_time("reward", time.perf_counter() - t0)
        lag = rl.cfg.rollout.max_off_policy_lag
        rewards: list[float | None] = []
        for r, w in zip(rollouts, rewards_for(rollouts, verdicts, rl.cfg), strict=True):
            stale = version - r.policy_version > lag
            self.stale += stale
            rewards.append(None if stale else w)
        self.rollouts, self.verdicts, self.rewards = list(rollouts), verdicts, rewards
        return rewards

    def gathered(self) -> StepRecord | None:
        """Rank 0: one record of every rank's rollouts, verdicts and rewards (rank order; phase times
        are the slowest rank's); None on the other ranks. On a single process: this record."""
        from rlcoder.learn import dist

        if dist.world_size() == 1:
            return self
        parts = dist.gather_to_main((self.rollouts, self.verdicts, self.rewards, self.stale, self.times_s))
        if parts is None:
            return None
        whole = StepRecord()
        for rollouts, verdicts, rewards, stale, times in parts:
            whole.rollouts += rollouts
            whole.verdicts += verdicts
            whole.rewards += rewards
            whole.stale += stale
            for phase, seconds in times.items():
                whole.times_s[phase] = max(whole.times_s.get(phase, 0.0), seconds)
        return whole

    def groups(self, step: int) -> list[ScoredGroup]:
        """The step's records, as they go to the run directory."""
        return group_scored(self.rollouts, self.verdicts, self.rewards, step=step)

    def summary(self) -> dict[str, float]:
        """Pass rate, verdict counts, dropped samples, throughput and phase times (pure)."""
        counts = {s.value: 0 for s in VerdictStatus}
        for v in self.verdicts:
            counts[v.status.value] += 1
        tokens = sum(len(r.completion_token_ids) for r in self.rollouts)
        rollout_s = self.times_s.get("rollout", 0.0)
        out: dict[str, float] = {f"verdict/{k}": float(c) for k, c in counts.items()}
        out["pass_rate"] = pass_rate(counts["pass"], len(self.verdicts) - counts["infra_error"])
        out["dropped/infra_error"] = float(counts["infra_error"])
        out["dropped/stale"] = float(self.stale)
        out["completion_tokens"] = float(tokens)
        out["rollout_tokens_per_s"] = tokens / rollout_s if rollout_s > 0 else 0.0
        for phase, seconds in self.times_s.items():
            out[f"time/{phase}_s"] = seconds
        return out

    def finish(self, rl: RLSetup, row: dict[str, Any], algo: str) -> None:
        """Append the step's metrics row, print its progress line, and start the next step afresh."""
        rl.stage.append_metrics(row)
        rl.log(progress_line(algo, row, rl.cfg.learner.steps))
        self.clear()


def check_sequence(
    prompt: PromptText, problem: Problem, tokenizer: Any, max_tokens: int = 48
) -> tuple[list[int], list[int]]:
    """A fixed prompt + reference-solution sequence that every weight sync is checked on."""
    completion = tokenizer(solution_message(problem), add_special_tokens=False)["input_ids"][:max_tokens]
    return list(prompt.token_ids), list(completion)
