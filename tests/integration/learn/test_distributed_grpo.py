"""GRPO (TRL's GRPOTrainer, DDP over gloo as accelerate runs it with use_cpu) on 2 ranks equals 1 rank
for the same global batch and seed: each rank samples and scores its own whole groups, rank 0 writes
the step's records (all of them, once), and the logged loss and the updated weights match: rel 1e-4
on the loss, 1e-4 absolute per weight after one AdamW step at lr 1e-3 (a tenth of the step; Adam
moves noise-level gradients by up to lr) and each tensor's update within 1% of its norm."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from rlcoder.records import RolloutRequest, Verdict, VerdictStatus
from tests.helpers.fakes import ScriptedFleet, ScriptedScorer, fixed_rollout
from tests.helpers.ranks import run_ranks

pytestmark = pytest.mark.integration

OVERRIDES = [
    "stages=[grpo]",
    "data.limit=4",
    "learner.steps=1",
    "learner.prompts_per_step=4",
    "rollout.samples_per_prompt=2",
    "learner.completions_per_device_batch=2",
    "learner.lr=1e-3",
    "learner.torch_threads=1",
    "logging.tensorboard=false",
    "eval.around_rl=false",
]


def answer(q: RolloutRequest, i: int):
    """Sample i of a group: its own tokens, text `code i`."""
    return dataclasses.replace(fixed_rollout(q, i), completion_token_ids=[5 + i, 6 + 2 * i, 7])


def verdict(item, i: int) -> Verdict:
    """Pass for even samples (by what was written, not by position in a rank's batch)."""
    ok = item.completion.strip().endswith(("0", "2"))
    return Verdict(VerdictStatus.PASS if ok else VerdictStatus.FAIL, passed=int(ok), total=1)


def train_one_step(model_dir: str, run_dir: str) -> tuple[list[dict], dict] | None:
    from rlcoder.config import load_config
    from rlcoder.data.problems import load_problems
    from rlcoder.data.prompts import prompts_for
    from rlcoder.learn import dist
    from rlcoder.learn.grpo import train_grpo
    from rlcoder.learn.loader import load_causal_lm, load_tokenizer
    from rlcoder.learn.step import RLSetup
    from rlcoder.run_dir import RunDir

    cfg = load_config(None, [*OVERRIDES, f"run_dir={run_dir}", f"learner.num_processes={dist.world_size()}"])
    tokenizer = load_tokenizer(cfg, model_dir)
    problems = {p.problem_id: p for p in load_problems(cfg.data.train_source, limit=cfg.data.limit)}
    prompts, _ = prompts_for(problems.values(), tokenizer, cfg.data)
    fleet = ScriptedFleet(answer)
    stage = RunDir(run_dir).stage("grpo")
    scorer = ScriptedScorer(verdict)
    rl = RLSetup(cfg, stage, tokenizer, problems, prompts, fleet, fleet, scorer, lambda s: None)
    train_grpo(rl, model_dir)
    asked = sum(len(requests) for requests, _ in fleet.asked)
    if not dist.is_main():
        return None
    state = {k: v.clone() for k, v in load_causal_lm(cfg, stage.final).state_dict().items()}
    groups = [g.problem_id for g in stage.read_step(1)]
    return [*stage.read_metrics(), {"groups": groups, "asked": asked}], state


def test_two_grpo_ranks_match_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rlcoder.config import load_config
    from rlcoder.learn.loader import load_causal_lm

    ((rows1, state1),) = run_ranks(1, train_one_step, str(tiny_model_dir), str(tmp_path / "one"))
    (rows2, state2), none = run_ranks(2, train_one_step, str(tiny_model_dir), str(tmp_path / "two"))
    assert none is None
    (m1, info1), (m2, info2) = rows1, rows2
    assert (info1["asked"], info2["asked"]) == (4, 2)  # each rank sampled its own 2 of the 4 groups
    assert sorted(info1["groups"]) == sorted(info2["groups"]) and len(info2["groups"]) == 4
    assert m1["pass_rate"] == m2["pass_rate"] == 0.5
    assert m2["loss"] == pytest.approx(m1["loss"], rel=1e-4, abs=1e-7)
    # the first step's loss is ~0 (ratio 1, advantages sum to 0 per group): the gradient is not
    assert m1["grad_norm"] > 0 and m2["grad_norm"] == pytest.approx(m1["grad_norm"], rel=1e-3)
    base = load_causal_lm(load_config(), tiny_model_dir).state_dict()
    moved = 0
    for name, want in state1.items():
        got = state2[name]
        assert got.dtype == want.dtype, name
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0, msg=name)
        step1, step2 = want - base[name], got - base[name]
        assert float((step2 - step1).norm()) <= 1e-2 * float(step1.norm()) + 1e-7, name
        moved += bool(step1.abs().max() > 0)
    assert moved > 0
