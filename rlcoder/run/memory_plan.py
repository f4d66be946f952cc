"""The memory plan of a run: per learner rank, the parameters, gradients, optimizer state and an
activation estimate under the run's sharding; per rollout GPU, the engine's weights and KV cache; and
the GPUs and nodes the run needs. Pure arithmetic on the config and the model's shape (no torch), so
`rlcoder config` can print it and refuse a config that cannot fit before anything starts.

Sharding: learner.num_processes > 1 shards parameters, gradients and optimizer state over the ranks
(FSDP2) on GPU and for PPO; GRPO on CPU runs DDP (accelerate ignores FSDP with use_cpu): replicated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rlcoder.config import ConfigError, RunConfig, completion_token_limit

GB = 1e9
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Activation bytes per token and layer, in units of hidden_size * dtype bytes (inputs of the
# attention and MLP blocks, q/k/v/o, norms, the MLP's intermediate counted separately), and the
# logits' working set per kept position in units of vocab_size (the logits in the model dtype plus
# a float32 log-softmax and its gradient). Calibrated against bench/learner_bench.py on CPU.
_LAYER_HIDDEN_FACTOR = 24
_LAYER_INTERMEDIATE_FACTOR = 7
_LOGIT_FP32_COPIES = 3
_ENGINE_OVERHEAD_GB = 2.0  # CUDA context, activations and graphs of one vLLM engine


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs to know of a decoder-only transformer."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied_embeddings: bool

    def layer_params(self) -> int:
        h, q, kv = self.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        return 2 * h * q + 2 * h * kv + q + 2 * kv + 3 * h * self.intermediate_size + 2 * h

    def params(self) -> int:
        embed = self.vocab_size * self.hidden_size
        return (
            embed * (1 if self.tied_embeddings else 2)
            + self.num_layers * self.layer_params()
            + self.hidden_size
        )

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear a LoRA adapter may target."""
        h, q, kv, i = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        )
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * dtype_bytes


# Shapes of the hub models the configs name (their config.json), for planning without a download.
KNOWN_SHAPES = {
    "Qwen/Qwen3-8B": ModelShape(151936, 4096, 12288, 36, 32, 8, 128, False),
    "Qwen/Qwen2.5-Coder-7B-Instruct": ModelShape(152064, 3584, 18944, 28, 28, 4, 128, False),
    "Qwen/Qwen2.5-1.5B": ModelShape(151936, 1536, 8960, 28, 12, 2, 128, True),
    "Qwen/Qwen2.5-0.5B": ModelShape(151936, 896, 4864, 24, 14, 2, 64, True),
}


def shape_from_hf_config(config: dict) -> ModelShape:
    heads = int(config["num_attention_heads"])
    return ModelShape(
        vocab_size=int(config["vocab_size"]),
        hidden_size=int(config["hidden_size"]),
        intermediate_size=int(config["intermediate_size"]),
        num_layers=int(config["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def model_shape(name_or_path: str) -> ModelShape | None:
    """The tiny model's shape, a local directory's config.json, a known hub id; else None."""
    if name_or_path == "tiny":
        from rlcoder.run.tiny_model import TinySpec

        t = TinySpec()
        return ModelShape(t.vocab_size, t.hidden_size, t.intermediate_size, t.num_hidden_layers,
                          t.num_attention_heads, t.num_key_value_heads,
                          t.hidden_size // t.num_attention_heads, True)  # fmt: skip
    config = Path(name_or_path) / "config.json"
    if config.is_file():
        return shape_from_hf_config(json.loads(config.read_text()))
    return KNOWN_SHAPES.get(name_or_path)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per learner rank and per rollout GPU, and the GPUs/nodes the run needs."""

    on_gpu: bool
    sharded_over: int  # ranks the learner state is split over (1 = replicated)
    params_b: float
    grads_b: float
    optimizer_b: float
    working_b: float  # unsharded layers under FSDP (gathered for forward/backward)
    activations_b: float
    engine_weights_b: float  # per rollout GPU (weights / tensor_parallel_size)
    engine_kv_b: float  # KV cache the engine may use on that GPU
    kv_sequences: float  # max_model_len sequences that KV cache holds
    learner_gpus: int
    rollout_gpus: int
    nodes: int

    @property
    def learner_b(self) -> float:
        return self.params_b + self.grads_b + self.optimizer_b + self.working_b + self.activations_b


def memory_plan(cfg: RunConfig, shape: ModelShape) -> MemoryPlan:
    """The plan for `cfg` on a model of `shape` (see the module doc for the sharding)."""
    learner, ro, ppo = cfg.learner, cfg.rollout, cfg.learner.ppo
    on_gpu = ro.gpus_per_worker > 0
    algo = "ppo" if "ppo" in cfg.stages else "grpo"
    ranks = learner.num_processes
    shards = ranks if ranks > 1 and (on_gpu or algo == "ppo") else 1
    wb = _DTYPE_BYTES[cfg.model.dtype]
    total = shape.params()
    if cfg.lora.enabled:
        dims = shape.module_dims()
        adapter = shape.num_layers * sum(
            cfg.lora.r * sum(dims[m]) for m in cfg.lora.target_modules if m in dims
        )
        params, grads, optim = total * wb + adapter * 4, adapter * 4, adapter * 8  # fp32 adapter, AdamW
    else:
        params, grads, optim = total * wb, total * wb, 2 * total * wb  # AdamW states in the param dtype
    frozen_copies = 0
    if algo == "ppo" and ppo.critic == "separate":
        params, grads, optim = 2 * params, 2 * grads, 2 * optim
    if not cfg.lora.enabled and (
        (algo == "ppo" and ppo.kl_coef > 0) or (algo == "grpo" and learner.grpo.beta > 0)
    ):
        frozen_copies = 1  # the reference policy
    params += frozen_copies * total * wb
    working = 3 * shape.layer_params() * wb if shards > 1 else 0.0
    tokens = cfg.data.max_prompt_tokens + completion_token_limit(cfg)
    batch = learner.completions_per_device_batch
    per_layer = (
        batch
        * tokens
        * (_LAYER_HIDDEN_FACTOR * shape.hidden_size + _LAYER_INTERMEDIATE_FACTOR * shape.intermediate_size)
        * wb
    )
    if learner.gradient_checkpointing:
        layers = shape.num_layers * batch * tokens * shape.hidden_size * wb + per_layer
    else:
        layers = shape.num_layers * per_layer
    logits = batch * (completion_token_limit(cfg) + 1) * shape.vocab_size * (wb + 4 * _LOGIT_FP32_COPIES)
    engine_w = total * wb / ro.tensor_parallel_size
    budget = ro.gpu_memory_utilization * cfg.cluster.gpu_memory_gb * GB
    kv = max(budget - engine_w - _ENGINE_OVERHEAD_GB * GB, 0.0) if on_gpu else 0.0
    seq_kv = shape.kv_bytes_per_token(wb) * cfg.model.max_model_len / ro.tensor_parallel_size
    learner_gpus = ranks if on_gpu else 0
    rollout_gpus = math.ceil(ro.num_workers * ro.gpus_per_worker)
    nodes = math.ceil((learner_gpus + rollout_gpus) / cfg.cluster.gpus_per_node) if on_gpu else 1
    return MemoryPlan(on_gpu, shards, params / shards, grads / shards, optim / shards, working,
                      layers + logits, engine_w if on_gpu else 0.0, kv, kv / seq_kv if seq_kv else 0.0,
                      learner_gpus, rollout_gpus, nodes)  # fmt: skip


def describe(plan: MemoryPlan, cfg: RunConfig) -> list[str]:
    """The plan as `rlcoder config` prints it, one `#` line each."""
    where = "per GPU" if plan.on_gpu else "per process (CPU)"
    how = f"sharded over {plan.sharded_over} ranks (FSDP2)" if plan.sharded_over > 1 else "replicated"
    lines = [
        f"# memory plan, learner {where}, {how}: params {plan.params_b / GB:.2f} GB + grads "
        f"{plan.grads_b / GB:.2f} + optimizer {plan.optimizer_b / GB:.2f} + gathered layers "
        f"{plan.working_b / GB:.2f} + activations {plan.activations_b / GB:.2f} = "
        f"{plan.learner_b / GB:.2f} GB"
    ]
    if plan.on_gpu:
        lines.append(
            f"# memory plan, rollout per GPU: engine weights {plan.engine_weights_b / GB:.2f} GB + KV cache "
            f"{plan.engine_kv_b / GB:.2f} GB ({plan.kv_sequences:.0f} sequences of {cfg.model.max_model_len} "
            f"tokens) of {cfg.rollout.gpu_memory_utilization} x {cfg.cluster.gpu_memory_gb:g} GB"
        )
        lines.append(
            f"# GPUs: {plan.learner_gpus} learner + {plan.rollout_gpus} rollout = "
            f"{plan.learner_gpus + plan.rollout_gpus} on {plan.nodes} node(s) of {cfg.cluster.gpus_per_node}"
        )
    return lines


def check_fits(plan: MemoryPlan, cfg: RunConfig) -> None:
    """Raise ConfigError, with the arithmetic, when the plan does not fit the configured cluster."""
    if not plan.on_gpu:
        return
    cap = cfg.cluster.gpu_memory_gb
    if plan.learner_b > cap * GB:
        raise ConfigError(
            f"learner: {plan.learner_b / GB:.1f} GB per GPU (params {plan.params_b / GB:.1f} + grads "
            f"{plan.grads_b / GB:.1f} + optimizer {plan.optimizer_b / GB:.1f} + gathered layers "
            f"{plan.working_b / GB:.1f} + activations {plan.activations_b / GB:.1f}) > cluster.gpu_memory_gb "
            f"= {cap:g}; shard over more ranks (learner.num_processes), enable lora, "
            "gradient_checkpointing, or lower completions_per_device_batch"
        )
    if plan.kv_sequences < 1:
        raise ConfigError(
            f"rollout: engine weights {plan.engine_weights_b / GB:.1f} GB + {_ENGINE_OVERHEAD_GB:g} GB "
            "overhead "
            f"leave {plan.engine_kv_b / GB:.1f} GB of {cfg.rollout.gpu_memory_utilization} x {cap:g} GB for "
            f"KV cache: not one {cfg.model.max_model_len}-token sequence fits; raise tensor_parallel_size"
        )
    nodes = cfg.cluster.nodes
    if nodes is not None and plan.nodes > nodes:
        need = plan.learner_gpus + plan.rollout_gpus
        raise ConfigError(
            f"cluster.nodes: {plan.learner_gpus} learner + {plan.rollout_gpus} rollout = {need} GPUs need "
            f"ceil({need} / {cfg.cluster.gpus_per_node}) = {plan.nodes} nodes, cluster has {nodes}"
        )
