"""The small specs the rollout fleet and its engines take, built from the run config in one place:
sampling (a GRPO group's SamplingSpec), one engine's EngineSpec and the fleet's FleetSpec. rollout/
never sees the RunConfig."""

from __future__ import annotations

from rlcoder.config import RunConfig
from rlcoder.records import EngineSpec, FleetSpec, SamplingSpec


def sampling_spec(cfg: RunConfig, n: int | None = None) -> SamplingSpec:
    """How the run samples: rollout.samples_per_prompt completions per prompt (or `n`)."""
    ro = cfg.rollout
    return SamplingSpec(
        n=ro.samples_per_prompt if n is None else n,
        temperature=ro.temperature,
        top_p=ro.top_p,
        max_new_tokens=ro.max_new_tokens,
    )


def engine_spec(cfg: RunConfig, model_path: str, kind: str | None = None) -> EngineSpec:
    """One rollout engine for `model_path` as the config says (`kind` overrides rollout.engine)."""
    ro = cfg.rollout
    return EngineSpec(
        kind=kind or ro.engine,
        model_path=str(model_path),
        dtype=cfg.model.dtype,
        max_model_len=cfg.model.max_model_len,
        seed=cfg.seed,
        tensor_parallel_size=ro.tensor_parallel_size,
        gpu_memory_utilization=ro.gpu_memory_utilization,
        enable_lora=cfg.lora.enabled,
        max_lora_rank=cfg.lora.r,
        trust_remote_code=cfg.model.trust_remote_code,
        on_gpu=ro.gpus_per_worker > 0,
        enforce_eager=ro.gpus_per_worker == 0,
    )


def fleet_spec(cfg: RunConfig, model_path: str, engine: str | None = None) -> FleetSpec:
    """The rollout fleet of a run: rollout.num_workers engines, sampling as the run samples."""
    ro = cfg.rollout
    return FleetSpec(
        engine=engine_spec(cfg, model_path, engine),
        num_workers=ro.num_workers,
        gpus_per_worker=ro.gpus_per_worker,
        sampling=sampling_spec(cfg),
        sync_check_tolerance=ro.sync_check_tolerance,
    )
