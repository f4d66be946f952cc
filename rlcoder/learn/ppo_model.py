"""The PPO learner's models and state: the policy (full weights or a LoRA adapter), the critic (a value
head on the policy's last hidden state, or a separate model with its own head), the frozen reference
policy for the KL penalty, the optimizer; a step's rollouts as padded tensors, the forward pass that
turns them into per-token logprobs and values, and checkpoints that a resumed run restores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlcoder.config import RunConfig
from rlcoder.learn import dist, fsdp
from rlcoder.learn.loader import load_adapter, load_backbone, load_causal_lm, with_lora
from rlcoder.learn.ppo_math import token_logprobs
from rlcoder.learn.step import loss_mask
from rlcoder.learn.weight_sync import is_peft_model
from rlcoder.records import Rollout

Tensor = torch.Tensor
CRITIC_FILE = "critic.safetensors"


# ---------------------------------------------------------------------------------------------
# Rollouts as tensors


@dataclass
class RolloutBatch:
    """Prompts left-padded to `width` columns, completions right-padded after them, so completion
    token t of every row sits in column width + t. Shapes: [B, width + T] and [B, T]."""

    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    completion_ids: Tensor  # [B, T]
    mask: Tensor  # [B, T] float: 1 on policy tokens, 0 on environment tokens and padding
    fleet_logprobs: Tensor  # [B, T] the sampling engine's logprobs
    scores: Tensor  # [B] the verdicts' rewards
    width: int

    def rows(self, index: Tensor) -> RolloutBatch:
        return self._map(lambda t: t[index])

    def to(self, device: torch.device) -> RolloutBatch:
        return self._map(lambda t: t.to(device))

    def _map(self, fn: Callable[[Tensor], Tensor]) -> RolloutBatch:
        tensors = {f.name: fn(getattr(self, f.name)) for f in fields(self) if f.name != "width"}
        return RolloutBatch(**tensors, width=self.width)


def build_batch(
    rollouts: list[Rollout], scores: list[float], pad_id: int, mask_truncated: bool = False
) -> RolloutBatch:
    width = max(len(r.prompt_token_ids) for r in rollouts)
    length = max(1, *(len(r.completion_token_ids) for r in rollouts))
    ids, attn, comp, mask, lps = [], [], [], [], []
    for r in rollouts:
        p, c = list(r.prompt_token_ids), list(r.completion_token_ids)
        left, right = width - len(p), length - len(c)
        ids.append([pad_id] * left + p + c + [pad_id] * right)
        attn.append([0] * left + [1] * (len(p) + len(c)) + [0] * right)
        comp.append(c + [pad_id] * right)
        mask.append(loss_mask(r, mask_truncated) + [0] * right)
        lps.append(list(r.completion_logprobs) + [0.0] * right)
    attention = torch.tensor(attn)
    return RolloutBatch(
        input_ids=torch.tensor(ids),
        attention_mask=attention,
        position_ids=(attention.cumsum(dim=1) - 1).clamp(min=0),
        completion_ids=torch.tensor(comp),
        mask=torch.tensor(mask, dtype=torch.float32),
        fleet_logprobs=torch.tensor(lps, dtype=torch.float32),
        scores=torch.tensor(scores, dtype=torch.float32),
        width=width,
    )


# ---------------------------------------------------------------------------------------------
# Models


class Critic(nn.Module):
    """V(s_t) for every completion position. `backbone` None: a head on the policy's hidden states."""

    def __init__(self, hidden_size: int, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)  # values start at 0: the first advantages are the returns
        nn.init.zeros_(self.head.bias)

    def values(self, hidden: Tensor) -> Tensor:
        return self.head(hidden.float()).squeeze(-1)

    def trainable_state(self) -> dict[str, Tensor]:
        return {k: p.detach().cpu().contiguous() for k, p in self.named_parameters() if p.requires_grad}


@dataclass
class PpoLearner:
    cfg: RunConfig
    policy: Any  # transformers causal LM, or a peft model around one
    critic: Critic
    ref: Any  # frozen reference policy (full weights with kl_coef > 0), else None
    optimizer: Any
    scheduler: Any
    device: torch.device
    step: int = 0  # PPO steps done = the policy_version of the current weights
    pad_id: int = 0
    model_path: str = ""  # the stage's input weights (a sharded policy is saved through a plain copy)

    def trainable(self) -> list[nn.Parameter]:
        return [p for m in (self.policy, self.critic) for p in m.parameters() if p.requires_grad]

    @contextmanager
    def reference(self) -> Iterator[Any]:
        """The reference policy: the separate frozen model, or the policy with its adapter off."""
        if self.ref is not None:
            yield self.ref
        else:
            with self.policy.disable_adapter():
                yield self.policy


def _load_policy(cfg: RunConfig, model_path: str, checkpoint: Path | None) -> Any:
    if not cfg.lora.enabled:
        return load_causal_lm(cfg, checkpoint / "policy" if checkpoint else model_path)
    base = load_causal_lm(cfg, model_path)
    if checkpoint:
        return load_adapter(base, checkpoint / "policy")
    return with_lora(base, cfg)


def _load_critic(cfg: RunConfig, model_path: str, hidden_size: int) -> Critic:
    if cfg.learner.ppo.critic == "value_head":
        return Critic(hidden_size)
    backbone = with_lora(load_backbone(cfg, model_path), cfg, task_type=None)
    return Critic(hidden_size, backbone)


def load_learner(cfg: RunConfig, model_path: str, checkpoint: Path | None, pad_id: int) -> PpoLearner:
    """Policy, critic, reference and optimizer, from `model_path` or from a PPO checkpoint."""
    from transformers import get_scheduler

    device = _device()
    policy = _load_policy(cfg, model_path, checkpoint)
    critic = _load_critic(cfg, model_path, policy.config.hidden_size)
    if checkpoint:
        _restore_critic(critic, checkpoint)
    ref = None
    if cfg.learner.ppo.kl_coef > 0 and not cfg.lora.enabled:
        ref = load_causal_lm(cfg, model_path).to(device).eval().requires_grad_(False)
    if cfg.learner.gradient_checkpointing:
        models: list[Any] = [policy, critic.backbone]
        for m in models:
            if m is not None:
                m.gradient_checkpointing_enable()
                if is_peft_model(m):
                    m.enable_input_require_grads()
    # training mode for the updates (HF checkpointing works only there); dropout stays as configured
    policy.to(device).train()
    critic.to(device).train()
    if dist.world_size() > 1:  # FSDP2: every rank holds 1/N of each parameter, gradient and moment
        _shard(policy, critic, ref)
    ppo, lr = cfg.learner.ppo, cfg.learner.lr
    critic_params = [p for p in critic.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in policy.parameters() if p.requires_grad], "lr": lr},
            {"params": critic_params, "lr": ppo.critic_lr or lr},
        ],
        weight_decay=0.0,
    )
    scheduler = get_scheduler(
        cfg.learner.lr_scheduler, optimizer, num_warmup_steps=0, num_training_steps=cfg.learner.steps
    )
    learner = PpoLearner(cfg, policy, critic, ref, optimizer, scheduler, device, pad_id=pad_id)
    learner.model_path = str(model_path)
    if checkpoint:
        _restore(learner, checkpoint)
    return learner


def _device() -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    import os

    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def _shard(policy: Any, critic: Critic, ref: Any) -> None:
    from torch.distributed.fsdp import fully_shard

    fsdp.shard(policy)
    if critic.backbone is not None:
        fsdp.shard(critic.backbone)
    fully_shard(critic.head)  # called directly by Critic.values, so it gets its own FSDP hooks
    if ref is not None:
        fsdp.shard(ref)


# ---------------------------------------------------------------------------------------------
# Forward


def forward(
    learner: PpoLearner, batch: RolloutBatch, model: Any = None, *, with_values: bool = True
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(logits [B, T, V], logprobs [B, T], values [B, T] or None) at the completion positions,
    logits at the sampling temperature. `model` replaces the policy (the reference)."""
    model = model if model is not None else learner.policy
    shared = with_values and learner.critic.backbone is None and model is learner.policy
    inputs = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
    }
    length = batch.completion_ids.shape[1]
    # the last length + 1 positions are [width - 1, width + length): only their logits are needed
    out = model(**inputs, output_hidden_states=shared, use_cache=False, logits_to_keep=length + 1)
    span = slice(batch.width - 1, batch.width - 1 + length)
    temperature = learner.cfg.rollout.temperature or 1.0
    full = out.logits.shape[1] != length + 1  # a model that ignores logits_to_keep
    logits = (out.logits[:, span] if full else out.logits[:, :length]) / temperature
    logprobs = token_logprobs(logits, batch.completion_ids)
    values = None
    if shared:
        values = learner.critic.values(out.hidden_states[-1][:, span])
    elif with_values:
        backbone: Any = learner.critic.backbone
        hidden = backbone(**inputs, use_cache=False).last_hidden_state
        values = learner.critic.values(hidden[:, span])
    return logits, logprobs, values


@contextmanager
def no_grad_eval(learner: PpoLearner) -> Iterator[None]:
    """Inference mode for the rollout-time pass (dropout off), training mode restored afterwards."""
    modes = [(m, m.training) for m in (learner.policy, learner.critic)]
    for m, _ in modes:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, was in modes:
            m.train(was)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(learner: PpoLearner, path: Path) -> None:
    """policy/ (HF model or adapter), the critic's trainable weights, optimizer and scheduler. With
    N ranks every rank takes part in the gathers and rank 0 alone writes."""
    from safetensors.torch import save_file

    if dist.world_size() == 1:
        path.mkdir(parents=True, exist_ok=True)
        learner.policy.save_pretrained(str(path / "policy"))
        critic_state = learner.critic.trainable_state()
        optimizer_state = learner.optimizer.state_dict()
    else:
        policy = plain_policy(learner)  # rank 0: a plain copy with the gathered weights
        trainable = {k for k, p in learner.critic.named_parameters() if p.requires_grad}
        critic_state = fsdp.gather_full_state(learner.critic, keep=trainable.__contains__)
        optimizer_state = fsdp.optimizer_state(_modules(learner), learner.optimizer)
        if not dist.is_main():
            return
        path.mkdir(parents=True, exist_ok=True)
        policy.save_pretrained(str(path / "policy"))
    save_file({k: v.contiguous() for k, v in critic_state.items()}, str(path / CRITIC_FILE))
    torch.save(optimizer_state, path / "optimizer.pt")
    torch.save(learner.scheduler.state_dict(), path / "scheduler.pt")
    (path / "state.json").write_text(json.dumps({"step": learner.step}))


def _modules(learner: PpoLearner) -> nn.Module:
    """Policy and critic as one module: the optimizer's parameters by name, for the sharded state."""
    return nn.ModuleDict({"policy": learner.policy, "critic": learner.critic})


def plain_policy(learner: PpoLearner) -> Any:
    """Rank 0: an unsharded copy of the policy (adapter unmerged) on the CPU, None elsewhere; every
    rank must call it (the weights are gathered from the shards)."""
    state = fsdp.gather_full_state(learner.policy)
    if not dist.is_main():
        return None
    cfg = learner.cfg
    plain = with_lora(load_causal_lm(cfg, learner.model_path), cfg)
    plain.load_state_dict(state, strict=True)
    return plain


def _restore_critic(critic: Critic, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path / CRITIC_FILE))
    missing, unexpected = critic.load_state_dict(state, strict=False)
    trainable = {k for k, p in critic.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise RuntimeError(f"{path}: critic weights mismatch: missing {missing}, unexpected {unexpected}")


def _restore(learner: PpoLearner, path: Path) -> None:
    state = torch.load(path / "optimizer.pt", map_location=learner.device)
    if dist.world_size() == 1:
        learner.optimizer.load_state_dict(state)
    else:
        fsdp.load_optimizer_state(_modules(learner), learner.optimizer, state)
    learner.scheduler.load_state_dict(torch.load(path / "scheduler.pt"))
    learner.step = int(json.loads((path / "state.json").read_text())["step"])


def save_final(learner: PpoLearner, target: Path, tokenizer: Any) -> None:
    """The policy as a plain HF model (LoRA merged) for evaluation and the next stage (rank 0 writes)."""
    model = learner.policy if dist.world_size() == 1 else plain_policy(learner)
    if model is None:
        return
    if is_peft_model(model):
        model = model.merge_and_unload()
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
