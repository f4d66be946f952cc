"""The RL step plumbing GRPO and PPO share: what a stage works with (RLSetup), the step's record
(rollouts, verdicts, rewards, phase times) with its ROLLOUT and SCORE phases, and how a finished step
reaches the run directory and the console (one metrics row, one progress line)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.console import eta, progress_line
from rlcoder.data.prompts import PromptText, solution_message
from rlcoder.env.scoring import rewards_for, verdicts_for
from rlcoder.records import (
    UNSCORED,
    Problem,
    Rollout,
    RolloutRequest,
    ScoredGroup,
    Verdict,
    VerdictStatus,
    group_scored,
    pass_rate,
)
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
class _Group:
    """One prompt's samples with their verdicts and rewards."""

    rollouts: list[Rollout]
    verdicts: list[Verdict]
    rewards: list[float | None]

    @property
    def informative(self) -> bool:
        """Some kept rewards differ: the group has a nonzero advantage to learn from."""
        return len({w for w in self.rewards if w is not None}) > 1


def refill_prompts(n_prompts: int, k: int, step: int, round_: int, seed: int) -> list[int]:
    """Indices of `k` fresh prompts for dynamic-sampling round `round_` of `step`: a pure function of
    its arguments, so a resumed run refills exactly as the killed one would have."""
    rng = random.Random(f"{seed}-refill-{step}-{round_}")
    order = rng.sample(range(n_prompts), n_prompts)
    return [order[i % n_prompts] for i in range(k)]


def loss_mask(rollout: Rollout, mask_truncated: bool = False) -> list[int]:
    """1 for each completion token the loss trains on: the policy's own tokens (0 where the environment
    inserted them), and none of a completion cut at max_new_tokens when `mask_truncated` (DAPO)."""
    n = len(rollout.completion_token_ids)
    if mask_truncated and rollout.finish_reason == "length":
        return [0] * n
    if not rollout.env_mask:
        return [1] * n
    if len(rollout.env_mask) != n:
        raise ValueError(f"{rollout.rollout_id}: env_mask has {len(rollout.env_mask)} entries for {n} tokens")
    return [int(m) for m in rollout.env_mask]


@dataclass
class StepRecord:
    """What one step produced: its rollouts, verdicts and rewards (index-aligned) and phase times.
    Filled by `sample` and `score`, written and cleared by `finish`."""

    rollouts: list[Rollout] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    rewards: list[float | None] = field(default_factory=list)
    stale: int = 0
    times_s: dict[str, float] = field(default_factory=dict)
    dynamic: dict[str, float] = field(default_factory=dict)  # dynamic sampling's counts, when on
    mask_truncated: bool = False  # count truncated completions as masked out of the loss
    started_s: float = field(default_factory=time.monotonic)  # for the ETA: this process's steps only
    first_step: int | None = None  # the step before the first one this process ran (resume)

    def add_time(self, phase: str, seconds: float) -> None:
        self.times_s[phase] = self.times_s.get(phase, 0.0) + seconds

    def clear(self) -> None:
        self.rollouts, self.verdicts, self.rewards = [], [], []
        self.times_s.clear()
        self.dynamic = {}
        self.stale = 0

    # ROLLOUT
    def sample(self, rl: RLSetup, prompts: Sequence[PromptText], step: int) -> list[Rollout]:
        """One group of samples_per_prompt rollouts per prompt, flat and in prompt order (timed)."""
        self.rollouts = self._generate(rl, [p.request(step) for p in prompts])
        return self.rollouts

    def _generate(self, rl: RLSetup, requests: list[RolloutRequest]) -> list[Rollout]:
        t0 = time.perf_counter()
        groups = rl.source.generate_all(requests, sampling_spec(rl.cfg))
        self.add_time("rollout", time.perf_counter() - t0)
        return [r for group in groups for r in group]

    # SCORE
    async def score(self, rl: RLSetup, rollouts: list[Rollout], version: int) -> list[float | None]:
        """Verdicts and rewards for `rollouts`. None (drop the sample, never a 0 reward) for infra
        errors and for samples more than rollout.max_off_policy_lag updates older than `version`."""
        verdicts, rewards = await self._judge(rl, rollouts, version)
        self.rollouts, self.verdicts, self.rewards = list(rollouts), verdicts, rewards
        return rewards

    async def _judge(
        self, rl: RLSetup, rollouts: list[Rollout], version: int
    ) -> tuple[list[Verdict], list[float | None]]:
        t0 = time.perf_counter()
        verdicts = await verdicts_for(rl.scorer, rl.problems, rollouts, rl.cfg)
        self.add_time("reward", time.perf_counter() - t0)
        lag = rl.cfg.rollout.max_off_policy_lag
        rewards: list[float | None] = []
        for r, w in zip(rollouts, rewards_for(rollouts, verdicts, rl.cfg), strict=True):
            stale = version - r.policy_version > lag
            self.stale += stale
            rewards.append(None if stale else w)
        return verdicts, rewards

    # ROLLOUT and SCORE with dynamic sampling (DAPO)
    def sample_informative(
        self, rl: RLSetup, prompts: Sequence[PromptText], step: int, version: int
    ) -> list[Rollout]:
        """Sample and score the step's groups; groups whose rewards are all equal (zero advantage:
        nothing to learn) are replaced by groups of fresh prompts, for up to
        learner.dynamic_sampling_rounds extra rounds. The step keeps its number of groups."""
        n = rl.cfg.rollout.samples_per_prompt
        rollouts = self.sample(rl, prompts, step)
        verdicts, rewards = asyncio.run(self._judge(rl, rollouts, version))
        groups = [
            _Group(rollouts[i : i + n], verdicts[i : i + n], rewards[i : i + n])
            for i in range(0, len(rollouts), n)
        ]
        flat = [i for i, g in enumerate(groups) if not g.informative]
        self.dynamic = {
            "dynamic/uninformative": float(len(flat)),
            "dynamic/refilled": 0.0,
            "dynamic/rounds": 0.0,
        }
        asked = 0
        for rnd in range(1, rl.cfg.learner.dynamic_sampling_rounds + 1):
            if not flat:
                break
            fresh = refill_prompts(len(rl.prompts), len(flat), step, rnd, rl.cfg.seed)
            requests = [rl.prompts[k].request(step, group=asked + j + 1) for j, k in enumerate(fresh)]
            asked += len(requests)
            more = self._generate(rl, requests)
            more_verdicts, more_rewards = asyncio.run(self._judge(rl, more, version))
            for j, i in enumerate(flat):
                groups[i] = _Group(
                    more[j * n : (j + 1) * n],
                    more_verdicts[j * n : (j + 1) * n],
                    more_rewards[j * n : (j + 1) * n],
                )
            self.dynamic["dynamic/refilled"] += len(flat)
            self.dynamic["dynamic/rounds"] = float(rnd)
            flat = [i for i in flat if not groups[i].informative]
        self.dynamic["dynamic/left_uninformative"] = float(len(flat))
        self.rollouts = [r for g in groups for r in g.rollouts]
        self.verdicts = [v for g in groups for v in g.verdicts]
        self.rewards = [w for g in groups for w in g.rewards]
        return self.rollouts

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
        out["pass_rate"] = pass_rate(
            counts["pass"], len(self.verdicts) - sum(counts[s.value] for s in UNSCORED)
        )
        out["dropped/infra_error"] = float(counts["infra_error"])
        out["dropped/bad_test"] = float(counts["bad_test"])
        out["dropped/stale"] = float(self.stale)
        out["completion_tokens"] = float(tokens)
        out["rollout_tokens_per_s"] = tokens / rollout_s if rollout_s > 0 else 0.0
        for phase, seconds in self.times_s.items():
            out[f"time/{phase}_s"] = seconds
        out.update(self.dynamic)
        if self.mask_truncated:
            out["masked/truncated"] = float(sum(r.finish_reason == "length" for r in self.rollouts))
        return out

    def finish(self, rl: RLSetup, row: dict[str, Any], algo: str) -> None:
        """Append the step's metrics row, print its progress line (every logging.log_every steps and
        the last), and start the next step afresh."""
        rl.stage.append_metrics(row)
        step, steps = int(row["step"]), rl.cfg.learner.steps
        if self.first_step is None:
            self.first_step = step - 1
        if step % rl.cfg.logging.log_every == 0 or step == steps:
            left = eta(time.monotonic() - self.started_s, step - self.first_step, steps - self.first_step)
            rl.log(progress_line(algo, row, steps, left))
        self.clear()


def check_sequence(
    prompt: PromptText, problem: Problem, tokenizer: Any, max_tokens: int = 48
) -> tuple[list[int], list[int]]:
    """A fixed prompt + reference-solution sequence that every weight sync is checked on."""
    completion = tokenizer(solution_message(problem), add_special_tokens=False)["input_ids"][:max_tokens]
    return list(prompt.token_ids), list(completion)
