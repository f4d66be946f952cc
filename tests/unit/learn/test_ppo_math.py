"""PPO math against values worked by hand: GAE, token rewards, whitening, the clipped losses inside
and outside the clip range, and the masking of padding and of environment-inserted tokens."""

from __future__ import annotations

import math

import pytest
import torch

from rlcoder.learn.ppo_math import (
    approx_kl,
    entropy_from_logits,
    gae,
    last_token_index,
    masked_mean,
    masked_whiten,
    minibatch_slices,
    policy_loss,
    token_logprobs,
    token_rewards,
    value_loss,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_gae_three_tokens_by_hand():
    # gamma 1, lambda 0.5; reward 1 on the last token.
    # t=2: delta = 1 - 0.7 = 0.3                         A2 = 0.3
    # t=1: delta = 0 + 0.7 - 0.6 = 0.1                   A1 = 0.1 + 0.5 * 0.3 = 0.25
    # t=0: delta = 0 + 0.6 - 0.5 = 0.1                   A0 = 0.1 + 0.5 * 0.25 = 0.225
    adv, ret = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7]]), t([[1, 1, 1]]), gamma=1.0, lam=0.5)
    assert adv.tolist()[0] == pytest.approx([0.225, 0.25, 0.3])
    assert ret.tolist()[0] == pytest.approx([0.725, 0.85, 1.0])


def test_gae_with_discount_by_hand():
    # gamma 0.9, lambda 0.5 (gamma * lambda = 0.45)
    # t=2: delta = 1 - 0.7 = 0.3                          A2 = 0.3
    # t=1: delta = 0.9 * 0.7 - 0.6 = 0.03                 A1 = 0.03 + 0.45 * 0.3 = 0.165
    # t=0: delta = 0.9 * 0.6 - 0.5 = 0.04                 A0 = 0.04 + 0.45 * 0.165 = 0.11425
    adv, _ = gae(t([[0, 0, 1]]), t([[0.5, 0.6, 0.7]]), t([[1, 1, 1]]), gamma=0.9, lam=0.5)
    assert adv.tolist()[0] == pytest.approx([0.11425, 0.165, 0.3])


def test_gae_skips_environment_tokens_and_padding():
    # Row 0: an environment token at position 1 (its reward and value must not matter);
    # row 1: padding at position 3. Both are the 3-token example above.
    rewards = t([[0, 5.0, 0, 1], [0, 0, 1, 7.0]])
    values = t([[0.5, 9.0, 0.6, 0.7], [0.5, 0.6, 0.7, 9.0]])
    mask = t([[1, 0, 1, 1], [1, 1, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    assert adv.tolist()[0] == pytest.approx([0.225, 0.0, 0.25, 0.3])
    assert adv.tolist()[1] == pytest.approx([0.225, 0.25, 0.3, 0.0])
    assert ret.tolist()[0] == pytest.approx([0.725, 0.0, 0.85, 1.0])
    assert ret.tolist()[1] == pytest.approx([0.725, 0.85, 1.0, 0.0])


def test_token_rewards_score_on_last_policy_token_and_kl_on_policy_tokens():
    mask = t([[1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]])
    kl = t([[0.1, 5.0, 0.2, -0.1], [0.3, 0.1, 0.0, 7.0], [1, 1, 1, 1]])
    rewards = token_rewards(t([1.0, 0.5, 1.0]), kl, mask, kl_coef=0.5)
    assert rewards.tolist()[0] == pytest.approx([-0.05, 0.0, -0.1, 0.05 + 1.0])
    assert rewards.tolist()[1] == pytest.approx([-0.15, -0.05, 0.5, 0.0])
    assert rewards.tolist()[2] == [0.0, 0.0, 0.0, 0.0]  # no policy token: no reward anywhere
    assert last_token_index(mask).tolist() == [3, 2, 0]
    no_kl = token_rewards(t([1.0, 0.5, 1.0]), None, mask, kl_coef=0.5)
    assert no_kl.tolist()[0] == [0.0, 0.0, 0.0, 1.0]


def test_token_rewards_last_token_before_trailing_environment_tokens():
    rewards = token_rewards(t([1.0]), None, t([[1, 1, 0, 0]]), kl_coef=0.0)
    assert rewards.tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_masked_mean_and_whiten():
    x, mask = t([[1, 2, 3, 100]]), t([[1, 1, 1, 0]])
    assert float(masked_mean(x, mask)) == pytest.approx(2.0)
    assert float(masked_mean(x, mask, denominator=4)) == pytest.approx(1.5)
    # mean 2, population variance 2/3, std 0.8165
    white = masked_whiten(x, mask)
    assert white.tolist()[0] == pytest.approx([-1.224745, 0.0, 1.224745, 0.0], abs=1e-5)
    scaled = masked_whiten(x, mask, shift_mean=False)
    assert scaled.tolist()[0] == pytest.approx([0.775255, 2.0, 3.224745, 0.0], abs=1e-5)


def test_policy_loss_inside_and_outside_the_clip_range():
    # clip 0.2: ratios 1.1 (inside), 1.5 and 0.5 (outside), each with A = +2 and -2.
    #   r=1.1 A=+2: -2.2 (inside)            r=1.5 A=+2: max(-3, -2.4) = -2.4 (clipped)
    #   r=1.5 A=-2: max(3, 2.4) = 3          r=0.5 A=+2: max(-1, -1.6) = -1
    #   r=0.5 A=-2: max(1, 1.6) = 1.6 (clipped)
    # the sixth token is padding. Mean over 5 = (-2.2 - 2.4 + 3 - 1 + 1.6) / 5 = -0.2; clipped 2/5.
    ratios = t([[1.1, 1.5, 1.5, 0.5, 0.5, 3.0]])
    adv = t([[2.0, 2.0, -2.0, 2.0, -2.0, 100.0]])
    mask = t([[1, 1, 1, 1, 1, 0]])
    old = t([[-1.0] * 6])
    loss, clipfrac = policy_loss(old + ratios.log(), old, adv, mask, clip=0.2)
    assert float(loss) == pytest.approx(-0.2, abs=1e-5)
    assert float(clipfrac) == pytest.approx(0.4)


def test_policy_loss_gradient_is_zero_where_clipped():
    logp = (t([[-1.0, -1.0]]) + t([[1.1, 1.5]]).log()).requires_grad_(True)
    loss, _ = policy_loss(logp, t([[-1.0, -1.0]]), t([[2.0, 2.0]]), t([[1, 1]]), clip=0.2)
    loss.backward()
    # d/dlogp of -A r / 2 = -A r / 2 = -1.1 inside the range; 0 where the ratio is clipped
    assert logp.grad.tolist()[0] == pytest.approx([-1.1, 0.0])


def test_value_loss_inside_and_outside_the_clip_range():
    # clip 0.2, old value 1.0:
    #   v=1.1 R=2: inside, (1.1-2)^2 = 0.81
    #   v=1.5 R=2: v_clip = 1.2, max(0.25, 0.64) = 0.64 (clip active)
    #   v=1.5 R=0: v_clip = 1.2, max(2.25, 1.44) = 2.25
    # loss = 0.5 * (0.81 + 0.64 + 2.25) / 3 = 0.616667; the fourth token is padding.
    values, old = t([[1.1, 1.5, 1.5, 50.0]]), t([[1.0, 1.0, 1.0, 1.0]])
    returns, mask = t([[2.0, 2.0, 0.0, -50.0]]), t([[1, 1, 1, 0]])
    loss, clipfrac = value_loss(values, old, returns, mask, clip=0.2)
    assert float(loss) == pytest.approx(0.5 * 3.7 / 3)
    assert float(clipfrac) == pytest.approx(1 / 3)
    half, _ = value_loss(values, old, returns, mask, clip=0.2, denominator=6)
    assert float(half) == pytest.approx(0.5 * 3.7 / 6)


def test_approx_kl_entropy_and_token_logprobs():
    logp, old, mask = t([[math.log(2.0) - 1.0, -1.0, 5.0]]), t([[-1.0, -1.0, 0.0]]), t([[1, 1, 0]])
    # ratio 2: 2 - 1 - ln 2 = 0.306853; ratio 1: 0; mean over two tokens
    assert float(approx_kl(logp, old, mask)) == pytest.approx((1.0 - math.log(2.0)) / 2)
    assert entropy_from_logits(torch.zeros(1, 1, 4)).tolist() == [[pytest.approx(math.log(4.0))]]
    logits = t([[[0.0, math.log(3.0)]]])
    assert token_logprobs(logits, torch.tensor([[1]])).tolist() == [[pytest.approx(math.log(0.75))]]


def test_minibatch_slices_cover_every_sample_once():
    parts = minibatch_slices(10, 3, torch.Generator().manual_seed(0))
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert [len(p) for p in minibatch_slices(2, 4, torch.Generator().manual_seed(0))] == [1, 1]
