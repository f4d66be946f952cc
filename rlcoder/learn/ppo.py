"""The PPO learner (ours: TRL 1.16 has none): a plain torch loop over the same fleet, reward service,
records, run directory, checkpoints and weight sync as GRPO. One step:

# SYNC (the fleet gets the current policy as policy_version = steps done) -> # ROLLOUT ->
# SCORE -> # UPDATE (rollout-time logprobs, values and reference KL; token rewards; GAE; clipped
policy and value losses over minibatch epochs, stopped early above target_kl) -> records, checkpoint.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from rlcoder.config import RunConfig, ppo_minibatches
from rlcoder.learn import dist
from rlcoder.learn.step import RLSetup, StepRecord


def prompts_for_step(n_prompts: int, per_step: int, step: int, seed: int) -> list[int]:
    """Indices of step `step`'s prompts: consecutive slices of a per-epoch shuffle of all prompts,
    a pure function of the step so a resumed run samples what the killed one would have."""
    out = []
    for k in range((step - 1) * per_step, step * per_step):
        epoch, pos = divmod(k, n_prompts)
        out.append(random.Random(f"{seed}-{epoch}").sample(range(n_prompts), n_prompts)[pos])
    return out


@dataclass
class Experience:
    """A step's kept rollouts as tensors, with everything fixed at rollout time."""

    batch: Any  # ppo_model.RolloutBatch
    old_logprobs: Any  # [B, T]
    old_values: Any  # [B, T]
    advantages: Any  # [B, T]
    returns: Any  # [B, T]


def make_experience(learner: Any, rollouts: list[Any], rewards: list[float | None]) -> tuple[Any, dict]:
    """Logprobs and values under the current weights, token rewards (score at the last policy token,
    minus kl_coef x per-token KL to the reference), GAE advantages (whitened) and returns. On N ranks
    each holds its share of the step; whitening and the stats are over the global batch, and dropped
    rollouts stay as fully masked rows (every rank runs the same number of sharded forwards)."""
    import torch

    from rlcoder.learn.ppo_math import gae, masked_mean, masked_whiten, token_rewards
    from rlcoder.learn.ppo_model import build_batch, forward, no_grad_eval

    distributed = dist.world_size() > 1
    if distributed:
        kept = [(r, 0.0 if w is None else w) for r, w in zip(rollouts, rewards, strict=True)]
        dropped = [w is None for w in rewards]
        if dist.sum_floats([len(rewards) - sum(dropped)])[0] == 0:
            return None, {}
    else:
        kept = [(r, w) for r, w in zip(rollouts, rewards, strict=True) if w is not None]
        dropped = [False] * len(kept)
        if not kept:
            return None, {}
    cfg, ppo = learner.cfg, learner.cfg.learner.ppo
    rows, scores = [r for r, _ in kept], [w for _, w in kept]
    batch = build_batch(rows, scores, learner.pad_id, cfg.learner.mask_truncated).to(learner.device)
    batch.mask[torch.tensor(dropped, dtype=torch.bool, device=learner.device)] = 0.0
    per_device = cfg.learner.completions_per_device_batch
    parts: dict[str, list[Any]] = {"lp": [], "v": [], "ref": []}
    with no_grad_eval(learner):
        for idx in torch.arange(len(kept)).split(per_device):
            micro = batch.rows(idx.to(learner.device))
            _, lp, v = forward(learner, micro)
            parts["lp"].append(lp)
            parts["v"].append(v)
            if ppo.kl_coef > 0:
                with learner.reference() as ref:
                    parts["ref"].append(forward(learner, micro, ref, with_values=False)[1])
    old_lp, old_v, mask = torch.cat(parts["lp"]), torch.cat(parts["v"]), batch.mask
    kl = old_lp - torch.cat(parts["ref"]) if parts["ref"] else None
    rewards_t = token_rewards(batch.scores, kl, mask, ppo.kl_coef)
    adv, ret = gae(rewards_t, old_v, mask, ppo.gamma, ppo.lam)
    mean = global_masked_mean if distributed else lambda x, m: float(masked_mean(x, m))
    if ppo.whiten_advantages:
        adv = global_whiten(adv, mask) if distributed else masked_whiten(adv, mask)
    n_kept = len(kept) - sum(dropped)
    score_sum, n_global = dist.sum_floats([float(batch.scores.sum()), n_kept])
    stats = {
        "reward": score_sum / n_global if distributed else float(batch.scores.mean()),
        "value_mean": mean(old_v, mask),
        "return_mean": mean(ret, mask),
        "logprob_gap": mean((old_lp - batch.fleet_logprobs).abs(), mask),
        "completions_trained": float(n_global),
    }
    if kl is not None:
        stats["kl_ref"] = mean(kl, mask)
    return Experience(batch, old_lp, old_v, adv, ret), stats


def global_masked_mean(x: Any, mask: Any) -> float:
    total, count = dist.sum_floats([float((x * mask).sum()), float(mask.sum())])
    return total / max(count, 1.0)


def global_whiten(x: Any, mask: Any, eps: float = 1e-8) -> Any:
    """ppo_math.masked_whiten with the mean and (population) variance over every rank's tokens."""
    mean = global_masked_mean(x, mask)
    var = global_masked_mean((x - mean) ** 2, mask)
    return (x - mean) * (var + eps) ** -0.5 * mask


def minibatch_loss(learner: Any, exp: Experience, index: Any, tokens: float) -> tuple[Any, dict[str, float]]:
    """Loss of one device batch, scaled as its share of a minibatch of `tokens` policy tokens."""
    import torch

    from rlcoder.learn.ppo_math import approx_kl, entropy_from_logits, masked_mean, policy_loss, value_loss
    from rlcoder.learn.ppo_model import forward

    ppo = learner.cfg.learner.ppo
    batch = exp.batch.rows(index)
    mask = batch.mask
    logits, lp, values = forward(learner, batch)
    assert values is not None
    old_lp, adv = exp.old_logprobs[index], exp.advantages[index]
    pg, clipfrac = policy_loss(lp, old_lp, adv, mask, ppo.clip_range, tokens)
    old_v, ret = exp.old_values[index], exp.returns[index]
    vf, vf_clipfrac = value_loss(values, old_v, ret, mask, ppo.value_clip, tokens)
    with torch.set_grad_enabled(ppo.entropy_coef > 0):  # [B, T, vocab] of graph only when it is used
        entropy = masked_mean(entropy_from_logits(logits), mask, tokens)
    loss = pg + ppo.vf_coef * vf - ppo.entropy_coef * entropy
    share = float(mask.sum()) / tokens
    stats = {
        "loss": float(loss.detach()),
        "loss/policy": float(pg.detach()),
        "loss/value": float(vf.detach()),
        "entropy": float(entropy.detach()),
        "approx_kl": float(approx_kl(lp.detach(), old_lp, mask)) * share,
        "clipfrac": float(clipfrac) * share,
        "value_clipfrac": float(vf_clipfrac) * share,
    }
    return loss, stats


def ppo_update(learner: Any, exp: Experience, step: int) -> dict[str, float]:
    """learner.ppo.epochs passes over the experience in shuffled minibatches, one optimizer step
    each; stops (dropping that minibatch's update) once a minibatch's approx KL exceeds target_kl."""
    import torch

    from rlcoder.learn.ppo_math import minibatch_slices

    cfg = learner.cfg
    totals: dict[str, float] = {}
    updates, stopped = 0, False
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + step)
    for _epoch in range(cfg.learner.ppo.epochs):
        for part in minibatch_slices(len(exp.batch.scores), ppo_minibatches(cfg), gen):
            stats = minibatch_step(learner, exp, part.to(learner.device))
            if stats is None:
                stopped = True
                break
            updates += 1
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
        if stopped:
            break
    learner.scheduler.step()
    out = {k: v / updates for k, v in totals.items()} if updates else {}
    out.update({"ppo/updates": float(updates), "ppo/early_stop": float(stopped)})
    out["learning_rate"] = float(learner.scheduler.get_last_lr()[0])
    return out


def minibatch_step(learner: Any, exp: Experience, part: Any) -> dict[str, float] | None:
    """Gradients over one minibatch in device batches, then one optimizer step; None (and no
    step) when the minibatch's approx KL is above learner.ppo.target_kl."""

    from rlcoder.learn.fsdp import clip_grad_norm

    cfg, world = learner.cfg, dist.world_size()
    # every rank's share is scaled by the global minibatch's tokens; FSDP averages gradients over
    # the ranks, so each rank's loss is scaled back up by the world size: the sum is the global loss
    tokens = max(dist.sum_floats([float(exp.batch.mask[part].sum())])[0], 1.0)
    learner.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for index in part.split(cfg.learner.completions_per_device_batch):
        loss, stats = minibatch_loss(learner, exp, index, tokens)
        (loss * world if world > 1 else loss).backward()
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v
    totals = dist.sum_dict(totals)  # the early stop below is the same decision on every rank
    target = cfg.learner.ppo.target_kl
    if target is not None and totals["approx_kl"] > target:
        learner.optimizer.zero_grad(set_to_none=True)
        return None
    totals["grad_norm"] = clip_grad_norm(learner.trainable(), cfg.learner.max_grad_norm)
    learner.optimizer.step()
    return totals


def train_ppo(rl: RLSetup, model_path: str) -> None:
    """Run PPO to learner.steps (resuming from the last complete checkpoint); save the final policy
    (LoRA merged) to stage.final and leave the fleet on it."""
    import torch

    from rlcoder.learn.ppo_model import load_learner, save_checkpoint, save_final
    from rlcoder.learn.weight_sync import fleet_sync_for

    cfg, stage, record = rl.cfg, rl.stage, StepRecord(mask_truncated=rl.cfg.learner.mask_truncated)
    # rank 0 rewinds the run directory to its last complete checkpoint; every rank resumes from it
    checkpoint = dist.broadcast_from_main(stage.resume_checkpoint() if dist.is_main() else None)
    if checkpoint:
        rl.log(f"[ppo] resuming from {checkpoint}")
    torch.manual_seed(cfg.seed)
    pad = rl.tokenizer.pad_token_id if rl.tokenizer.pad_token_id is not None else rl.tokenizer.eos_token_id
    learner = load_learner(cfg, model_path, checkpoint, pad)
    sync = fleet_sync_for(
        rl, record, model_getter=lambda: learner.policy, version_getter=lambda: learner.step
    )
    synced = -1  # the fleet starts on the stage's input weights: sync (and check) before sampling
    steps = cfg.learner.steps
    board = tensorboard(cfg, stage.root) if dist.is_main() else None
    for step in range(learner.step + 1, steps + 1):
        if synced != learner.step:
            sync.sync_weights()
            synced = learner.step
        row = run_step(rl, learner, record, step)
        for key, value in row.items():
            if board is not None and key != "step":
                board.add_scalar(key, value, step)
        if dist.is_main():
            record.finish(rl, row, "ppo")
        record.clear()
        if step % cfg.learner.save_every == 0 or step == steps:
            path = stage.checkpoint(step)
            save_checkpoint(learner, path)  # collective with N ranks; rank 0 writes
            if dist.is_main():
                stage.mark_complete(path)
                stage.prune_checkpoints(keep=cfg.learner.save_total_limit)
            dist.barrier()
    if board is not None:
        board.close()
    if synced != learner.step:
        sync.sync_weights()  # the fleet samples the final policy for evaluation
    save_final(learner, stage.final, rl.tokenizer)


def tensorboard(cfg: RunConfig, root: Any) -> Any:
    """A TensorBoard writer in <stage>/tensorboard (where GRPO's go), or None when logging is off."""
    if not cfg.logging.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(root / "tensorboard"))


def run_step(rl: RLSetup, learner: Any, record: StepRecord, step: int) -> dict[str, Any]:
    """ROLLOUT, SCORE and UPDATE of one step; its records written; its metrics row returned."""
    cfg: RunConfig = rl.cfg
    chosen = prompts_for_step(len(rl.prompts), cfg.learner.prompts_per_step, step, cfg.seed)
    prompts = [rl.prompts[i] for i in dist.local_slice(chosen)]
    if cfg.learner.dynamic_sampling_rounds:
        rollouts, rewards = record.sample_informative(rl, prompts, step, learner.step), record.rewards
    else:
        rollouts = record.sample(rl, prompts, step)
        rewards = asyncio.run(record.score(rl, rollouts, learner.step))
    # UPDATE
    t0 = time.perf_counter()
    exp, stats = make_experience(learner, rollouts, rewards)
    if exp is not None:
        stats.update(ppo_update(learner, exp, step))
    learner.step = step
    record.add_time("update", time.perf_counter() - t0)
    whole = record.gathered()  # rank 0: every rank's records of the step; None elsewhere
    if whole is None:
        return {}
    rl.stage.write_step(step, whole.groups(step))
    return {"step": step, **whole.summary(), **stats}
