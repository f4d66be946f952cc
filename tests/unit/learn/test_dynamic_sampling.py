"""Dynamic sampling (DAPO) and truncated-completion masking, with a scripted fleet and scorer: groups whose
rewards are all equal are refilled with fresh prompts and the refilling stops after the configured
rounds; GRPO hands TRL the refilled groups and their rewards; a masked truncated sample gets no gradient."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import torch

from rlcoder.config import load_config
from rlcoder.data.prompts import PromptText
from rlcoder.learn.grpo import GrpoStep
from rlcoder.learn.ppo_math import policy_loss
from rlcoder.learn.ppo_model import build_batch
from rlcoder.learn.step import RLSetup, StepRecord, loss_mask, refill_prompts
from rlcoder.records import FunctionInfo, Problem, Rollout, RolloutRequest, Verdict, VerdictStatus
from tests.helpers.fakes import ScriptedFleet, ScriptedScorer, fixed_rollout

IDS = ("a", "b", "c", "d")
PROBLEMS = {pid: Problem(pid, "q", "s", "from solution import f\n", [FunctionInfo("f")]) for pid in IDS}
PROMPTS = [PromptText(pid, f"prompt {pid}", [ord(pid)], "instruct") for pid in IDS]


def config(rounds: int, *extra: str):
    batch = [
        "rollout.samples_per_prompt=2",
        "learner.prompts_per_step=2",
        "learner.completions_per_device_batch=2",
    ]
    return load_config(None, [*batch, f"learner.dynamic_sampling_rounds={rounds}", *extra])


def outcome_fleet(uniform_first_round: bool = True, always_uniform: bool = False) -> ScriptedFleet:
    """Sample i of a group passes when i == 0 (a mixed group), except in the step's first round, where
    problem a always passes and b always fails (the groups dynamic sampling must replace)."""

    def answer(q: RolloutRequest, i: int) -> Rollout:
        first = q.group == 0
        if always_uniform or (first and uniform_first_round and q.problem_id in ("a", "b")):
            text = "pass" if q.problem_id == "a" else "fail"
        else:
            text = "pass" if i == 0 else "fail"
        return Rollout(
            q.rollout_id(i),
            q.problem_id,
            i,
            q.prompt,
            q.prompt_token_ids,
            [5, 6],
            [-0.5, -0.5],
            text,
            "stop",
            0,
            q.step,
        )

    return ScriptedFleet(answer)


def by_text(item, i):
    return Verdict(VerdictStatus.PASS if item.completion == "pass" else VerdictStatus.FAIL, total=1)


def setup(cfg, fleet, scorer) -> RLSetup:
    return RLSetup(cfg, None, None, PROBLEMS, PROMPTS, fleet, fleet, scorer, print)


def test_uniform_groups_are_refilled_with_fresh_prompts():
    fleet, scorer = outcome_fleet(), ScriptedScorer(by_text)
    record = StepRecord()
    rollouts = record.sample_informative(setup(config(2), fleet, scorer), PROMPTS[:2], step=3, version=0)
    assert len(fleet.asked) == 2  # the first round, then one refill of both groups
    fresh = [PROMPTS[k].problem_id for k in refill_prompts(len(PROMPTS), 2, 3, 1, 0)]
    assert [q.problem_id for q in fleet.asked[1][0]] == fresh and [q.group for q in fleet.asked[1][0]] == [
        1,
        2,
    ]
    assert len(rollouts) == 4 and len({r.rollout_id for r in rollouts}) == 4
    assert record.rewards == [1.0, 0.0, 1.0, 0.0] and len(record.verdicts) == 4
    s = record.summary()
    assert (s["dynamic/uninformative"], s["dynamic/refilled"], s["dynamic/rounds"]) == (2, 2, 1)
    assert s["dynamic/left_uninformative"] == 0
    assert [g.problem_id for g in record.groups(3)] == fresh  # the records hold what the learner trains on


def test_refilling_stops_after_the_configured_rounds():
    fleet, scorer = outcome_fleet(always_uniform=True), ScriptedScorer(by_text)
    record = StepRecord()
    record.sample_informative(setup(config(2), fleet, scorer), PROMPTS[:2], step=1, version=0)
    assert len(fleet.asked) == 3  # first round + 2 refills, then it keeps what it has
    s = record.summary()
    assert (s["dynamic/rounds"], s["dynamic/refilled"], s["dynamic/left_uninformative"]) == (2, 4, 2)
    informative = StepRecord()
    mixed = outcome_fleet(uniform_first_round=False)
    informative.sample_informative(setup(config(2), mixed, scorer), PROMPTS[:2], step=1, version=0)
    assert len(mixed.asked) == 1 and informative.summary()["dynamic/refilled"] == 0


def test_grpo_hands_trl_the_refilled_groups_and_their_rewards():
    fleet, scorer = outcome_fleet(), ScriptedScorer(by_text)
    step = GrpoStep(setup(config(1), fleet, scorer))
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=0))
    out = step.rollout_func(["prompt a", "prompt a", "prompt b", "prompt b"], trainer)
    assert len(out["rollout_id"]) == 4 and "env_mask" not in out
    rewards = asyncio.run(step.unit_tests([], [], rollout_id=out["rollout_id"], trainer_state=trainer.state))
    assert rewards == [1.0, 0.0, 1.0, 0.0]
    assert len(scorer.batches) == 2  # scored while refilling, not again by the reward function


def test_truncated_completions_are_masked_out_of_the_loss():
    q = RolloutRequest("a", "prompt a", [97], step=1)
    done = fixed_rollout(q, 0)
    cut = Rollout(q.rollout_id(1), "a", 1, q.prompt, [97], [5, 6, 7], [-0.5] * 3, "code", "length", 0, 1)
    assert loss_mask(cut) == [1, 1, 1] and loss_mask(cut, mask_truncated=True) == [0, 0, 0]
    assert loss_mask(done, mask_truncated=True) == [1, 1, 1]

    # a toy update: each completion token's logprob is its own parameter; the masked row's stay put
    batch = build_batch([done, cut], [1.0, 0.0], pad_id=0, mask_truncated=True)
    params = torch.nn.Parameter(torch.full((2, 3), -0.5))
    advantages = torch.tensor([[1.0] * 3, [-1.0] * 3])
    loss, _ = policy_loss(params, batch.fleet_logprobs, advantages, batch.mask, clip=0.2)
    loss.backward()
    torch.optim.SGD([params], lr=0.1).step()
    assert not torch.equal(params[0].detach(), torch.full((3,), -0.5))
    assert torch.equal(params[1].detach(), torch.full((3,), -0.5))

    fleet = ScriptedFleet(lambda r, i: cut if i else done)
    grpo = GrpoStep(setup(config(0, "learner.mask_truncated=true"), fleet, ScriptedScorer(by_text)))
    out = grpo.rollout_func(["prompt a", "prompt a"], SimpleNamespace(state=SimpleNamespace(global_step=0)))
    assert out["env_mask"] == [[1, 1, 1], [0, 0, 0]]  # TRL trains only where the mask is 1
    assert grpo.record.summary()["masked/truncated"] == 1
