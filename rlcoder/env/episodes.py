"""Multi-turn episodes with execution feedback (OpenCodeInterpreter): the policy answers, the answer
runs against the problem's public tests, and an answer that fails them gets the failure back as a
user turn and answers again, up to `rollout.turns` turns. Each episode comes back as one Rollout whose
completion is everything after the first prompt, with `env_mask` 0 on the feedback tokens.

One turn:  # SCORE (public and all tests) -> # FEEDBACK (template-rendered user turn, as tokens)
-> # GENERATE (from the whole conversation's token ids, one sample per live episode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from rlcoder.config import RunConfig, episode_token_limit
from rlcoder.data.prompts import build_messages, encode_text, render_chat
from rlcoder.data.public_tests import with_public_tests
from rlcoder.data.verification import completion_item
from rlcoder.env.feedback import format_feedback, needs_feedback
from rlcoder.records import (
    Problem,
    RewardMode,
    Rollout,
    RolloutRequest,
    SamplingSpec,
    ScoredGroup,
    ScoreItem,
    TurnRecord,
    Verdict,
    group_scored,
    reward_from_verdict,
)
from rlcoder.seams import RolloutSource, Scorer
from rlcoder.specs import sampling_spec

# Stands in for the answer when rendering the turn after it: what the template puts after it is the
# closing of the assistant turn, the feedback turn and the next generation prompt.
_ANSWER = "\x00rlcoder-answer\x00"


class TemplateError(ValueError):
    """The tokenizer's chat template cannot render a feedback turn after an answer."""


@dataclass
class _Episode:
    """One sample's conversation while it runs (internal)."""

    problem: Problem
    first: Rollout  # turn 1 as the fleet returned it: rollout id, prompt ids
    messages: list[dict[str, str]]  # the conversation so far, as text, for the chat template
    completion_ids: list[int] = field(default_factory=list)  # everything after the first prompt
    logprobs: list[float] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    policy_version: int = 0
    live: bool = True

    def add_answer(self, r: Rollout) -> None:
        self.completion_ids += r.completion_token_ids
        self.logprobs += r.completion_logprobs
        self.env_mask += [1] * len(r.completion_token_ids)
        self.policy_version = min(self.policy_version, r.policy_version)
        self.turns.append(TurnRecord(r.completion_text, r.finish_reason, len(r.completion_token_ids)))

    def add_feedback(self, text: str, ids: list[int]) -> None:
        self.messages += [
            {"role": "assistant", "content": self.turns[-1].completion_text},
            {"role": "user", "content": text},
        ]
        self.completion_ids += ids
        self.logprobs += [0.0] * len(ids)
        self.env_mask += [0] * len(ids)
        self.turns[-1].feedback = text

    def conversation_ids(self) -> list[int]:
        return self.first.prompt_token_ids + self.completion_ids

    def rollout(self) -> Rollout:
        """The first turn's rollout grown by every later turn: ids, policy version and turns."""
        last = self.turns[-1]
        return replace(
            self.first,
            completion_token_ids=self.completion_ids,
            completion_logprobs=self.logprobs,
            completion_text=last.completion_text,
            finish_reason=last.finish_reason,
            policy_version=self.policy_version,
            env_mask=self.env_mask,
            turns=self.turns,
        )


@dataclass
class FeedbackEpisodes:
    """A RolloutSource of multi-turn episodes over the policy's fleet: what the run samples from when
    rollout.turns > 1. The learners and eval see rollouts, as from the fleet itself."""

    fleet: RolloutSource
    scorer: Scorer
    problems: dict[str, Problem]
    tokenizer: Any
    cfg: RunConfig
    log: Callable[[str], None] | None = None

    def generate_all(
        self, requests: Sequence[RolloutRequest], sampling: SamplingSpec | None = None
    ) -> list[list[Rollout]]:
        sampling = sampling or sampling_spec(self.cfg)
        return run_episodes(
            self.fleet, self.scorer, self.problems, requests, self.tokenizer, self.cfg, sampling, self.log
        )


def run_episodes(
    fleet: RolloutSource,
    scorer: Scorer,
    problems: dict[str, Problem],
    requests: Sequence[RolloutRequest],
    tokenizer: Any,
    cfg: RunConfig,
    sampling: SamplingSpec,
    log: Callable[[str], None] | None = None,
) -> list[list[Rollout]]:
    """`sampling.n` episodes of up to `cfg.rollout.turns` turns per request, grouped by request in request
    order. Each episode's turns carry their public-test and all-test verdicts (the last turn's is the
    episode's final verdict). Requests must hold the prompts `build_prompt` renders for the config."""
    ro = cfg.rollout
    problems = {
        r.problem_id: with_public_tests(problems[r.problem_id], cfg.data.public_tests) for r in requests
    }
    groups = fleet.generate_all(list(requests), sampling)
    episodes = [
        [_start(problems[req.problem_id], r, tokenizer, cfg, req.prompt) for r in group]
        for req, group in zip(requests, groups, strict=True)
    ]
    flat = [e for group in episodes for e in group]
    for turn in range(1, ro.turns + 1):
        live = [e for e in flat if e.live]
        # SCORE
        _score_last_turn(live, scorer, cfg)
        if turn == ro.turns:
            break
        # FEEDBACK
        for e in live:
            e.live = _add_feedback(e, tokenizer, cfg)
        continuing = [e for e in live if e.live]
        if not continuing:
            break
        if log is not None:
            log(f"[multiturn] turn {turn + 1}: {len(continuing)} of {len(flat)} episodes get feedback")
        # GENERATE
        one = replace(sampling, n=1)
        asks = [
            RolloutRequest(e.first.problem_id, e.first.prompt, e.conversation_ids(), step=e.first.step)
            for e in continuing
        ]
        for e, group in zip(continuing, fleet.generate_all(asks, one), strict=True):
            e.add_answer(group[0])
    return [[e.rollout() for e in group] for group in episodes]


def _start(problem: Problem, r: Rollout, tokenizer: Any, cfg: RunConfig, prompt_text: str) -> _Episode:
    messages = build_messages(problem, style=cfg.data.prompt_style, system_prompt=cfg.data.system_prompt)
    if render_chat(tokenizer, messages, generation_prompt=True) != prompt_text:
        raise ValueError(
            f"{problem.problem_id}: the request's prompt is not what build_prompt renders for this config, "
            "so the feedback turns cannot continue its conversation"
        )
    e = _Episode(problem, r, messages, policy_version=r.policy_version)
    e.add_answer(r)
    return e


def _score_last_turn(episodes: list[_Episode], scorer: Scorer, cfg: RunConfig) -> None:
    """Score each episode's latest answer against its public tests and against all of them (once,
    when the problem has no hidden tests)."""
    items: list[ScoreItem] = []
    slots: list[tuple[int, int]] = []  # per episode: index of its public item, of its full item
    memory_mb = cfg.reward.memory_mb
    for e in episodes:
        p, text, rid = e.problem, e.turns[-1].completion_text, e.first.rollout_id
        limit_s = cfg.reward.limit_s(p.reference_runtime_s)
        item = partial(completion_item, p, text, item_id=rid, timeout_s=limit_s, memory_mb=memory_mb)
        items.append(item(public=True))
        if p.public_test != p.test:
            items.append(item())
        slots.append((len(items) - 1 - int(p.public_test != p.test), len(items) - 1))
    verdicts = asyncio.run(scorer.score(items)) if items else []
    if len(verdicts) != len(items):
        raise RuntimeError(f"scorer returned {len(verdicts)} verdicts for {len(items)} items")
    for e, (pub, full) in zip(episodes, slots, strict=True):
        e.turns[-1].public_verdict = verdicts[pub]
        e.turns[-1].verdict = verdicts[full]


def _add_feedback(e: _Episode, tokenizer: Any, cfg: RunConfig) -> bool:
    """Append the feedback turn when the answer failed its public tests and the next turn fits."""
    public = e.turns[-1].public_verdict
    if public is None or not needs_feedback(public):
        return False
    text = format_feedback(public, e.problem.public_test, e.problem.test_kind, cfg.rollout.feedback_max_chars)
    ids = feedback_token_ids(tokenizer, e.messages, text, e.completion_ids)
    if len(e.conversation_ids()) + len(ids) + cfg.rollout.max_new_tokens > episode_token_limit(cfg):
        return False
    e.add_feedback(text, ids)
    return True


def feedback_token_ids(
    tokenizer: Any,
    messages: list[dict[str, str]],
    feedback: str,
    answer_ids: Sequence[int],
) -> list[int]:
    """The tokens the environment inserts after the policy's answer: the rest of the assistant turn
    (its end-of-turn token, unless the policy generated it), the feedback user turn and the next
    generation prompt, as the chat template renders them. The answer itself is never re-tokenized:
    the policy's own tokens stand for it."""
    convo = [*messages, {"role": "assistant", "content": _ANSWER}, {"role": "user", "content": feedback}]
    text = render_chat(tokenizer, convo, generation_prompt=True)
    if text.count(_ANSWER) != 1:
        raise TemplateError("the chat template does not render the assistant turn's content verbatim")
    after = text.split(_ANSWER, 1)[1]
    if feedback not in after:
        raise TemplateError("the chat template drops the feedback turn after an assistant turn")
    if answer_ids and answer_ids[-1] in set(tokenizer.all_special_ids):
        closing = tokenizer.decode([answer_ids[-1]])
        if closing and after.startswith(closing):
            after = after[len(closing) :]  # the policy closed its turn itself
    return encode_text(tokenizer, after)


# ---------------------------------------------------------------------------------------------
# What the learners and eval read off an episode (pure)


def verdict_after_turn(rollout: Rollout, turn: int) -> Verdict | None:
    """The all-test verdict of the answer standing after `turn` turns (1-based): an episode that
    ended earlier keeps its last answer."""
    if not rollout.turns:
        return None
    return rollout.turns[min(turn, len(rollout.turns)) - 1].verdict


def groups_after_turn(
    groups: Sequence[Sequence[Rollout]], turn: int, mode: RewardMode = RewardMode.BINARY
) -> list[ScoredGroup]:
    """The episodes scored as if each had stopped after `turn` turns (all-test verdicts), one group per
    problem: `PassCounts.from_groups` on these gives pass@k at that turn (OpenCodeInterpreter's
    "+ execution feedback" column is the last turn's)."""
    rollouts = [r for group in groups for r in group]
    verdicts = [verdict_after_turn(r, turn) for r in rollouts]
    kept = [v for v in verdicts if v is not None]
    if len(kept) != len(verdicts):
        raise ValueError("episodes without turn verdicts (run_episodes makes them)")
    return group_scored(rollouts, kept, [reward_from_verdict(v, mode) for v in kept])
