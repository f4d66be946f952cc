"""The GRPO learner's pure pieces: TRL config mapping, rollout/reward functions, step records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from rlcoder.config import load_config
from rlcoder.data.prompts import PromptText
from rlcoder.learn.grpo import GrpoStep, grpo_args
from rlcoder.learn.step import RLSetup
from rlcoder.records import FunctionInfo, Problem, VerdictStatus
from tests.helpers.fakes import ScriptedFleet, ScriptedScorer

CFG = load_config(
    None,
    [
        "rollout.samples_per_prompt=2",
        "learner.prompts_per_step=2",
        "learner.completions_per_device_batch=2",
        "rollout.max_off_policy_lag=1",
    ],
)
PROBLEMS = {
    pid: Problem(
        pid,
        f"Write f for {pid}.",
        "def f():\n    return 1\n",
        "from solution import f\n",
        [FunctionInfo("f")],
    )
    for pid in ("a", "b")
}
PROMPTS = {f"prompt {pid}": PromptText(pid, f"prompt {pid}", [ord(pid)], "instruct") for pid in PROBLEMS}


def grpo_step(fleet: ScriptedFleet, scorer: ScriptedScorer | None = None) -> GrpoStep:
    scorer = scorer or ScriptedScorer.in_order([])
    rl = RLSetup(CFG, None, None, PROBLEMS, list(PROMPTS.values()), fleet, fleet, scorer, print)
    return GrpoStep(rl)


def test_grpo_args_maps_batch_plan_and_loss(tmp_path):
    cfg = load_config(
        None,
        [
            "learner.prompts_per_step=4",
            "rollout.samples_per_prompt=4",
            "learner.completions_per_device_batch=8",
            "learner.grpo.beta=0.001",
        ],
    )
    args = grpo_args(cfg, Path(tmp_path), on_gpu=False)
    assert args.per_device_train_batch_size == 8
    assert args.gradient_accumulation_steps == 2
    assert args.num_generations == 4
    assert args.generation_batch_size == 16  # one generation = one optimizer step of 4 prompts x 4
    assert args.beta == 0.001 and args.loss_type == "dapo"
    assert args.bf16 is False and args.use_cpu is True
    assert args.vllm_importance_sampling_correction is True
    assert args.vllm_importance_sampling_clip_max == 2.0

    assert args.top_entropy_quantile == 1.0

    other = load_config(
        None, ["learner.grpo.importance_sampling_cap=null", "learner.grpo.top_entropy_quantile=0.2"]
    )
    other_args = grpo_args(other, Path(tmp_path), on_gpu=False)
    assert other_args.vllm_importance_sampling_correction is False
    assert other_args.top_entropy_quantile == 0.2


def test_rollout_func_asks_one_group_per_distinct_prompt():
    fleet = ScriptedFleet(version=3)
    step = grpo_step(fleet)
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=3))
    out = step.rollout_func(["prompt a", "prompt a", "prompt b", "prompt b"], trainer)
    requests, sampling = fleet.asked[0]
    assert [q.problem_id for q in requests] == ["a", "b"]
    assert sampling.n == 2 and requests[0].step == 4
    assert out["prompt_ids"] == [[97], [97], [98], [98]]
    assert out["rollout_id"] == ["4-a-0", "4-a-1", "4-b-0", "4-b-1"]
    assert len(step.record.rollouts) == 4 and "rollout" in step.record.times_s
    assert "env_mask" not in out  # single answers: every completion token is the policy's


def test_rollout_func_refuses_ungrouped_prompts():
    step = grpo_step(ScriptedFleet())
    with pytest.raises(RuntimeError, match="groups of samples_per_prompt"):
        step.rollout_func(
            ["prompt a", "prompt b", "prompt a", "prompt b"],
            SimpleNamespace(state=SimpleNamespace(global_step=0)),
        )


def _scored_step(statuses, fleet_version, learner_step):
    scorer = ScriptedScorer.in_order(statuses)
    step = grpo_step(ScriptedFleet(version=fleet_version), scorer)
    step.rollout_func(
        ["prompt a", "prompt a", "prompt b", "prompt b"],
        SimpleNamespace(state=SimpleNamespace(global_step=0)),
    )
    ids = [r.rollout_id for r in step.record.rollouts]
    rewards = asyncio.run(
        step.unit_tests(
            prompts=[],
            completions=[],
            rollout_id=ids,
            trainer_state=SimpleNamespace(global_step=learner_step),
        )
    )
    return rewards, step.record, scorer


def test_reward_func_drops_infra_errors_never_zero():
    S = VerdictStatus
    rewards, buf, scorer = _scored_step([S.PASS, S.FAIL, S.INFRA_ERROR, S.TIMEOUT], 0, 0)
    assert rewards == [1.0, 0.0, None, 0.0]
    (items,) = scorer.batches
    assert [i.completion for i in items] == ["code 0", "code 1", "code 0", "code 1"]
    assert items[0].test == PROBLEMS["a"].test and items[0].item_id == "1-a-0"
    summary = buf.summary()
    assert summary["dropped/infra_error"] == 1
    assert summary["pass_rate"] == pytest.approx(1 / 3)


def test_reward_func_drops_samples_beyond_the_lag_bound():
    S = VerdictStatus
    rewards, buf, _ = _scored_step([S.PASS] * 4, fleet_version=1, learner_step=3)  # lag 2 > 1
    assert rewards == [None] * 4
    assert buf.stale == 4
    rewards, _, _ = _scored_step([S.PASS] * 4, fleet_version=2, learner_step=3)  # lag 1 is allowed
    assert rewards == [1.0] * 4


def test_step_record_regroups_by_prompt():
    S = VerdictStatus
    _, buf, _ = _scored_step([S.PASS, S.FAIL, S.FAIL, S.FAIL], 0, 0)
    groups = buf.groups(step=1)
    assert [g.problem_id for g in groups] == ["a", "b"]
    assert [len(g.rollouts) for g in groups] == [2, 2]
    assert groups[0].rewards == [1.0, 0.0]


def test_save_total_limit_reaches_the_grpo_trainer(tmp_path):
    assert load_config(None, []).learner.save_total_limit == 2
    cfg = load_config(None, ["learner.save_total_limit=5"])
    assert grpo_args(cfg, Path(tmp_path), on_gpu=False).save_total_limit == 5
