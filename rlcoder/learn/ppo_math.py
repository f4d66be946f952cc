"""The PPO math as small pure torch functions: token-level rewards, GAE, whitening, the clipped
policy and value losses, entropy and KL estimates. Tensors are [batch, completion tokens]; `mask` is
1 on tokens the policy produced (0 on padding and on environment-inserted tokens), and every mean
and every advantage is taken over the masked tokens only.
"""

from __future__ import annotations

from typing import Any

import torch

Tensor = torch.Tensor


def masked_mean(x: Tensor, mask: Tensor, denominator: float | None = None) -> Tensor:
    """Mean of x over the positions where mask is 1. `denominator` replaces the count of such
    positions (a micro-batch's share of a minibatch's token count)."""
    total = (x * mask).sum()
    count = mask.sum() if denominator is None else torch.tensor(float(denominator))
    return total / count.clamp(min=1.0)


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the masked positions (population variance); 0 where mask is 0.
    With shift_mean=False the mean is added back: only the scale changes."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def last_token_index(mask: Tensor) -> Tensor:
    """[batch] index of each row's last masked position (0 for a row with none)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).max(dim=1).values


def token_rewards(scores: Tensor, kl: Tensor | None, mask: Tensor, kl_coef: float) -> Tensor:
    """Per-token rewards [batch, T]: -kl_coef * kl on every policy token, plus the sequence's score
    ([batch], the verdict's reward) on its last policy token."""
    rewards = torch.zeros_like(mask, dtype=scores.dtype)
    if kl is not None and kl_coef:
        rewards = -kl_coef * kl * mask
    last = last_token_index(mask)
    has_tokens = mask.sum(dim=1) > 0
    rewards[torch.arange(mask.shape[0]), last] += scores * has_tokens
    return rewards


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation, backwards over the tokens. Masked positions are not
    steps of the episode: they get advantage 0 and are skipped, so the value that follows a policy
    token is the value at the next policy token (0 after the last one). Returns (advantages,
    returns = advantages + values), both 0 where mask is 0."""
    batch, length = mask.shape
    advantages = torch.zeros_like(values)
    next_value = torch.zeros(batch, dtype=values.dtype, device=values.device)
    carry = torch.zeros_like(next_value)
    for t in reversed(range(length)):
        on = mask[:, t].bool()
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        gae_t = delta + gamma * lam * carry
        advantages[:, t] = torch.where(on, gae_t, torch.zeros_like(gae_t))
        carry = torch.where(on, gae_t, carry)
        next_value = torch.where(on, values[:, t], next_value)
    returns = (advantages + values) * mask
    return advantages, returns


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip: float,
    denominator: float | None = None,
) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate, as a loss to minimize: mean of max(-A r, -A clip(r, 1-e, 1+e)) with
    r = exp(logprob - old_logprob). Returns (loss, fraction of tokens where the clip was active)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask, denominator)
    clipfrac = masked_mean((clipped > unclipped).float(), mask).detach()
    return loss, clipfrac


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip: float,
    denominator: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Clipped value loss: 0.5 * mean of max((v - R)^2, (v_clip - R)^2), where v_clip stays within
    `clip` of the value at rollout time. Returns (loss, fraction of tokens where the clip was active)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask, denominator)
    clipfrac = masked_mean((clipped > unclipped).float(), mask).detach()
    return loss, clipfrac


def entropy_from_logits(logits: Tensor) -> Tensor:
    """[batch, T] entropy of the categorical distribution at each position."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def token_logprobs(logits: Tensor, token_ids: Tensor) -> Tensor:
    """[batch, T] logprob of each token under logits [batch, T, vocab]."""
    logits = logits.float()
    picked = logits.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def approx_kl(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> Tensor:
    """Mean KL(old || new) estimate over the masked tokens: (r - 1) - log r (Schulman's k3), >= 0."""
    log_ratio = logprobs - old_logprobs
    return masked_mean(torch.exp(log_ratio) - 1.0 - log_ratio, mask)


def minibatch_slices(n: int, minibatches: int, generator: Any = None) -> list[Tensor]:
    """Shuffle range(n) and cut it into `minibatches` near-equal parts (fewer when n is smaller)."""
    order = torch.randperm(n, generator=generator)
    return [part for part in torch.tensor_split(order, min(minibatches, max(n, 1))) if len(part)]
