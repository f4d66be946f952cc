"""The PPO learner on the tiny model without a fleet: the batched forward agrees with the reference
logprobs, one update on scored rollouts changes the policy and the critic with finite losses (full
weights or LoRA; value head or separate critic; with the reference KL), and a checkpoint restores
policy, critic, optimizer and step."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rlcoder.config import load_config
from rlcoder.learn.ppo import make_experience, ppo_update
from rlcoder.learn.ppo_model import build_batch, forward, load_learner, no_grad_eval, save_checkpoint
from rlcoder.records import Rollout
from rollout.sync import completion_logprobs

pytestmark = pytest.mark.integration

BASE = [
    "stages=[ppo]",
    "learner.algo=ppo",
    "learner.prompts_per_step=2",
    "rollout.samples_per_prompt=2",
    "learner.completions_per_device_batch=2",
    "learner.ppo.completions_per_minibatch=2",
    "learner.lr=1e-3",
    "learner.ppo.kl_coef=0.1",
    "lora.r=4",
]


def _rollouts() -> list[Rollout]:
    """Four scored-looking rollouts of different prompt and completion lengths, one with an
    environment-inserted token."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for i, (p, c) in enumerate([(5, 7), (9, 3), (6, 6), (4, 8)]):
        prompt = torch.randint(10, 1000, (p,), generator=gen).tolist()
        completion = torch.randint(10, 1000, (c,), generator=gen).tolist()
        env = [1, 1, 0, 0, 1, 1] if i == 2 else []
        out.append(
            Rollout(f"1-p{i}-0", f"p{i}", 0, "", prompt, completion, [-8.0] * c, "", "stop", 0, env_mask=env)
        )
    return out


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in module.named_parameters() if p.requires_grad}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    now = dict(module.named_parameters())
    return any(not before[k].equal(now[k].detach()) for k in before)


def test_batched_forward_matches_reference_logprobs(tiny_model_dir: Path) -> None:
    cfg = load_config(None, [*BASE, "rollout.temperature=1.0"])
    learner = load_learner(cfg, str(tiny_model_dir), None, pad_id=0)
    rollouts = _rollouts()
    batch = build_batch(rollouts, [1.0] * 4, pad_id=0)
    with no_grad_eval(learner):
        _, logprobs, values = forward(learner, batch)
    assert values is not None and values.shape == logprobs.shape
    for row, r in enumerate(rollouts):
        expected = completion_logprobs(learner.policy, r.prompt_token_ids, r.completion_token_ids)
        got = logprobs[row, : len(expected)].tolist()
        assert got == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    "variant",
    [
        [],  # full weights, value head, frozen reference model
        ["lora.enabled=true", "learner.gradient_checkpointing=true"],  # reference = adapter off
        ["learner.ppo.critic=separate", "learner.ppo.entropy_coef=0.01"],
    ],
    ids=["full-value_head", "lora-value_head", "full-separate"],
)
def test_one_update_changes_policy_and_critic(tiny_model_dir: Path, variant: list[str]) -> None:
    cfg = load_config(None, [*BASE, *variant])
    learner = load_learner(cfg, str(tiny_model_dir), None, pad_id=0)
    policy0, critic0 = _snapshot(learner.policy), _snapshot(learner.critic)
    exp, stats = make_experience(learner, _rollouts(), [1.0, 0.0, None, 1.0])  # None: dropped
    assert exp is not None and exp.batch.scores.tolist() == [1.0, 0.0, 1.0]
    assert stats["kl_ref"] == pytest.approx(0.0, abs=1e-5)  # the policy still is the reference
    assert (exp.advantages * (1 - exp.batch.mask)).abs().sum() == 0  # nothing on padding
    out = ppo_update(learner, exp, step=1)
    assert out["ppo/updates"] == 4  # 2 epochs x 2 minibatches
    for key in ("loss", "loss/policy", "loss/value", "entropy", "approx_kl", "grad_norm"):
        assert math.isfinite(out[key]), key
    assert _changed(policy0, learner.policy)
    assert _changed(critic0, learner.critic)
    if cfg.lora.enabled:  # only the adapter trains: the base weights are the reference
        assert all("lora_" in k for k in policy0)
    _, again = make_experience(learner, _rollouts(), [1.0, 0.0, None, 1.0])
    assert again["kl_ref"] > 0


def test_early_stop_on_approx_kl(tiny_model_dir: Path) -> None:
    cfg = load_config(None, [*BASE, "learner.lr=0.05", "learner.ppo.target_kl=1e-6"])
    learner = load_learner(cfg, str(tiny_model_dir), None, pad_id=0)
    exp, _ = make_experience(learner, _rollouts(), [1.0, 0.0, 1.0, 0.0])
    out = ppo_update(learner, exp, step=1)
    # the first minibatch starts at the rollout policy (KL 0) and always updates; a later one stops
    assert out["ppo/early_stop"] == 1.0 and 1 <= out["ppo/updates"] < 4


@pytest.mark.parametrize("variant", [[], ["lora.enabled=true", "learner.ppo.critic=separate"]])
def test_checkpoint_restores_policy_critic_optimizer_and_step(
    tiny_model_dir: Path, tmp_path: Path, variant: list[str]
) -> None:
    cfg = load_config(None, [*BASE, *variant])
    learner = load_learner(cfg, str(tiny_model_dir), None, pad_id=0)
    exp, _ = make_experience(learner, _rollouts(), [1.0, 0.0, 1.0, 0.0])
    ppo_update(learner, exp, step=1)
    learner.step = 1
    save_checkpoint(learner, tmp_path / "checkpoint-1")
    resumed = load_learner(cfg, str(tiny_model_dir), tmp_path / "checkpoint-1", pad_id=0)
    assert resumed.step == 1
    for module, again in ((learner.policy, resumed.policy), (learner.critic, resumed.critic)):
        want, got = _snapshot(module), _snapshot(again)
        assert want.keys() == got.keys()
        assert all(want[k].equal(got[k]) for k in want)
    assert resumed.optimizer.state_dict()["state"].keys() == learner.optimizer.state_dict()["state"].keys()
    assert resumed.scheduler.state_dict() == learner.scheduler.state_dict()


def test_update_moves_the_policy_toward_rewarded_completions(tiny_model_dir: Path) -> None:
    cfg = load_config(None, [*BASE, "learner.ppo.kl_coef=0"])
    learner = load_learner(cfg, str(tiny_model_dir), None, pad_id=0)
    rollouts, rewards = _rollouts(), [1.0, 0.0, 1.0, 0.0]
    exp, _ = make_experience(learner, rollouts, rewards)
    ppo_update(learner, exp, step=1)
    with no_grad_eval(learner):
        _, new, _ = forward(learner, exp.batch)
    gain = ((new - exp.old_logprobs) * exp.batch.mask).sum(dim=1).tolist()
    assert gain[0] > 0 and gain[2] > 0, gain  # rewarded: more likely
    assert gain[1] < 0 and gain[3] < 0, gain  # not rewarded: less likely
