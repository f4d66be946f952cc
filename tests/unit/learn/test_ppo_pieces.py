"""The PPO learner's pure pieces: rollouts as padded tensors (environment tokens and padding masked),
the prompt schedule, its config validation, and checkpoint pruning."""

from __future__ import annotations

import pytest
import torch

from rlcoder.config import ConfigError, load_config, ppo_minibatches
from rlcoder.learn.ppo import prompts_for_step
from rlcoder.learn.ppo_model import build_batch
from rlcoder.learn.step import loss_mask
from rlcoder.records import Rollout
from rlcoder.run_dir import RunDir

PAD = 0


def _rollout(prompt, completion, env_mask=()):
    return Rollout(
        "1-p-0", "p", 0, "prompt", list(prompt), list(completion), [-0.5] * len(completion), "", "stop", 0,
        env_mask=list(env_mask),
    )  # fmt: skip


def test_build_batch_left_pads_prompts_and_masks_env_tokens_and_padding():
    a = _rollout([11, 12], [21, 22, 23], env_mask=[1, 0, 1])
    b = _rollout([13, 14, 15], [24])
    batch = build_batch([a, b], [1.0, 0.0], PAD)
    assert batch.width == 3
    assert batch.input_ids.tolist() == [[PAD, 11, 12, 21, 22, 23], [13, 14, 15, 24, PAD, PAD]]
    assert batch.attention_mask.tolist() == [[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]
    assert batch.position_ids.tolist()[0] == [0, 0, 1, 2, 3, 4]
    # completion token t of every row is in column width + t
    assert batch.completion_ids.tolist() == [[21, 22, 23], [24, PAD, PAD]]
    assert batch.input_ids[:, batch.width :].tolist()[0] == batch.completion_ids.tolist()[0]
    assert batch.mask.tolist() == [[1, 0, 1], [1, 0, 0]]
    assert batch.scores.tolist() == [1.0, 0.0]
    sub = batch.rows(torch.tensor([1]))
    assert sub.completion_ids.tolist() == [[24, PAD, PAD]] and sub.width == 3


def test_action_mask_rejects_a_misaligned_env_mask():
    assert loss_mask(_rollout([1], [2, 3])) == [1, 1]
    with pytest.raises(ValueError, match="env_mask has 1 entries for 2 tokens"):
        loss_mask(_rollout([1], [2, 3], env_mask=[1]))


def test_prompts_for_step_covers_every_prompt_once_per_epoch_and_is_deterministic():
    steps = [prompts_for_step(6, 2, s, seed=0) for s in range(1, 7)]
    assert sorted(i for s in steps[:3] for i in s) == list(range(6))  # epoch 1
    assert sorted(i for s in steps[3:] for i in s) == list(range(6))  # epoch 2
    assert steps[0] == prompts_for_step(6, 2, 1, seed=0)
    assert [prompts_for_step(6, 2, s, seed=1) for s in range(1, 4)] != steps[:3]
    assert sorted(prompts_for_step(3, 5, 1, seed=0)[:3]) == [0, 1, 2]  # more per step than prompts


PPO = ["stages=[sft, ppo]", "learner.algo=ppo"]


def test_ppo_minibatch_arithmetic():
    cfg = load_config(None, [*PPO, "learner.ppo.completions_per_minibatch=8"])  # 4 * 4 = 16
    assert ppo_minibatches(cfg) == 2
    assert ppo_minibatches(load_config(None, PPO)) == 1  # None: the whole step
    assert ppo_minibatches(load_config(None, [*PPO, "rollout.samples_per_prompt=1",
                                              "learner.completions_per_device_batch=4"])) == 1  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stages=[sft, ppo]"], "learner.algo: grpo but stages ['sft', 'ppo'] run ppo; set learner.algo=ppo"),
        (["learner.algo=ppo"], "learner.algo: ppo but stages ['sft', 'grpo'] run grpo"),
        ([*PPO, "learner.ppo.completions_per_minibatch=12"], "4 * 4 = 16 to divide into minibatches of 12"),
        (
            [*PPO, "learner.ppo.completions_per_minibatch=4"],
            "each a multiple of completions_per_device_batch",
        ),
        (
            [*PPO, "learner.num_processes=2", "learner.ppo.completions_per_minibatch=4"],
            "each a multiple of completions_per_device_batch * num_processes = 8 * 2 = 16",
        ),
        ([*PPO, "learner.num_processes=3"], "4 prompts do not split into whole groups over"),
        (
            [*PPO, "learner.ppo.critic=shared"],
            "learner.ppo.critic: Input should be 'value_head' or 'separate'",
        ),
        ([*PPO, "learner.ppo.clip_range=1.5"], "learner.ppo.clip_range: Input should be less than 1"),
    ],
)
def test_bad_ppo_config_is_one_line_naming_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_sft_alone_needs_no_rl_algo_match():
    assert load_config(None, ["stages=[sft]", "learner.algo=ppo"]).stages == ["sft"]


def test_prune_checkpoints_keeps_the_newest_complete_ones(tmp_path):
    stage = RunDir(tmp_path).stage("ppo")
    for step in (1, 2, 3, 4):
        path = stage.checkpoints / f"checkpoint-{step}"
        path.mkdir(parents=True)
        if step != 4:
            stage.mark_complete(path)
    stage.prune_checkpoints(keep=2)
    assert sorted(p.name for p in stage.checkpoints.iterdir()) == [
        "checkpoint-2",
        "checkpoint-3",
        "checkpoint-4",  # incomplete: maybe being written; rewind_to deals with it on resume
    ]
