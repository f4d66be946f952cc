"""The one config schema of a run (RunConfig over the sections in sections.py), its loading
(defaults <- YAML <- dotted overrides) and the batch arithmetic derived from it.

Depends on pydantic and PyYAML only, so the CLI can validate a config before any heavy import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlcoder.config.sections import (
    ClusterSection,
    DataSection,
    EvalSection,
    GrpoSection,
    LearnerSection,
    LoggingSection,
    LoraSection,
    ModelSection,
    PpoSection,
    RaySection,
    RewardSection,
    RolloutSection,
    Section,
    SftSection,
)

__all__ = [  # the sections are part of the config's interface
    "BatchPlan",
    "ClusterSection",
    "ConfigError",
    "DataSection",
    "EvalSection",
    "GrpoSection",
    "LearnerSection",
    "LoggingSection",
    "LoraSection",
    "ModelSection",
    "PpoSection",
    "RaySection",
    "RewardSection",
    "RolloutSection",
    "RunConfig",
    "Section",
    "SftBatchPlan",
    "SftSection",
    "Stage",
    "batch_plan",
    "completion_token_limit",
    "dump_config",
    "episode_token_limit",
    "load_config",
    "ppo_minibatches",
    "sft_batch_plan",
]


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the field."""


Stage = Literal["sft", "grpo", "ppo"]


def _default_stages() -> list[Stage]:
    return ["sft", "grpo"]


class RunConfig(BaseModel):
    """A whole run. Every field has a default: the defaults are the laptop run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    run_dir: str = Field("runs/laptop", description="where config, rollouts, metrics and checkpoints go")
    seed: int = Field(0, description="global seed")
    stages: list[Stage] = Field(
        default_factory=_default_stages, description="what `rlcoder train` runs, in order"
    )
    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    learner: LearnerSection = Field(default_factory=LearnerSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    ray: RaySection = Field(default_factory=RaySection)
    logging: LoggingSection = Field(default_factory=LoggingSection)

    @model_validator(mode="after")
    def _batches_divide(self) -> RunConfig:
        batch_plan(self)  # raises ConfigError with the arithmetic
        sft_batch_plan(self)
        _rl_stage_matches_algo(self)
        if "ppo" in self.stages:
            ppo_minibatches(self)
        episode_token_limit(self)
        return self


@dataclass(frozen=True)
class BatchPlan:
    """Every batch size of an RL step, derived in one place. Units are in the names."""

    prompts_per_step: int
    samples_per_prompt: int
    completions_per_step: int  # prompts_per_step * samples_per_prompt
    completions_per_device_batch: int
    num_processes: int
    gradient_accumulation_steps: int  # completions_per_step / (device batch * processes)


def batch_plan(cfg: RunConfig) -> BatchPlan:
    """Derive the batch sizes; a non-dividing combination is an error that shows the arithmetic."""
    prompts = cfg.learner.prompts_per_step
    group = cfg.rollout.samples_per_prompt
    per_device = cfg.learner.completions_per_device_batch
    procs = cfg.learner.num_processes
    if group < 2 and "grpo" in cfg.stages:
        raise ConfigError(
            f"rollout.samples_per_prompt: GRPO needs groups of at least 2 completions, got {group}"
        )
    completions = prompts * group
    per_update = per_device * procs
    if prompts % procs:
        raise ConfigError(
            f"learner.prompts_per_step: {prompts} prompts do not split into whole groups over "
            f"learner.num_processes = {procs} ranks ({prompts} % {procs} = {prompts % procs}); every rank "
            f"trains whole groups of samples_per_prompt = {group}, so prompts_per_step must be a multiple "
            f"of {procs}"
        )
    if completions % per_update:
        raise ConfigError(
            "learner.completions_per_device_batch: prompts_per_step * samples_per_prompt = "
            f"{prompts} * {group} = {completions} completions per step, which does not divide into "
            f"batches of completions_per_device_batch * num_processes = {per_device} * {procs} = {per_update}"
        )
    return BatchPlan(prompts, group, completions, per_device, procs, completions // per_update)


def _rl_stage_matches_algo(cfg: RunConfig) -> None:
    """learner.algo and the RL stage named in `stages` must say the same thing."""
    rl = [s for s in cfg.stages if s != "sft"]
    if any(s != cfg.learner.algo for s in rl):
        raise ConfigError(
            f"learner.algo: {cfg.learner.algo} but stages {list(cfg.stages)} run {', '.join(rl)}; "
            f"set learner.algo={rl[0]} (or name {cfg.learner.algo} in stages)"
        )


def ppo_minibatches(cfg: RunConfig) -> int:
    """PPO optimizer steps per epoch: the step's completions over completions_per_minibatch, each
    minibatch made of whole device batches. Raises ConfigError showing the arithmetic."""
    plan = batch_plan(cfg)
    ppo = cfg.learner.ppo
    per_minibatch = ppo.completions_per_minibatch or plan.completions_per_step
    per_update = plan.completions_per_device_batch * plan.num_processes
    if plan.completions_per_step % per_minibatch or per_minibatch % per_update:
        raise ConfigError(
            "learner.ppo.completions_per_minibatch: needs completions_per_step = "
            f"{plan.prompts_per_step} * {plan.samples_per_prompt} = {plan.completions_per_step} to divide "
            f"into minibatches of {per_minibatch}, each a multiple of completions_per_device_batch * "
            f"num_processes = {plan.completions_per_device_batch} * {plan.num_processes} = {per_update}"
        )
    return plan.completions_per_step // per_minibatch


@dataclass(frozen=True)
class SftBatchPlan:
    """The SFT batch sizes. Units are in the names."""

    examples_per_step: int  # learner.sft.batch_size
    examples_per_device_batch: int
    num_processes: int
    gradient_accumulation_steps: int  # examples_per_step / (device batch * processes)


def sft_batch_plan(cfg: RunConfig) -> SftBatchPlan:
    """Derive the SFT batch sizes; a non-dividing combination is an error that shows the arithmetic."""
    sft = cfg.learner.sft
    procs = cfg.learner.num_processes
    if sft.examples_per_device_batch is None:
        if sft.batch_size % procs:
            raise ConfigError(
                f"learner.sft.batch_size: {sft.batch_size} examples per step do not divide over "
                f"learner.num_processes = {procs}"
            )
        per_device = sft.batch_size // procs
    else:
        per_device = sft.examples_per_device_batch
    per_update = per_device * procs
    if sft.batch_size % per_update:
        raise ConfigError(
            f"learner.sft.examples_per_device_batch: batch_size = {sft.batch_size} examples per step does "
            f"not divide into batches of examples_per_device_batch * num_processes = {per_device} * {procs} "
            f"= {per_update}"
        )
    return SftBatchPlan(sft.batch_size, per_device, procs, sft.batch_size // per_update)


def episode_token_limit(cfg: RunConfig) -> int:
    """Tokens a multi-turn episode may hold in all (prompt, answers, feedback): what the engine holds
    unless rollout.max_episode_tokens asks for less."""
    held = cfg.model.max_model_len
    limit = cfg.rollout.max_episode_tokens
    if limit is None:
        return held
    if limit > held:
        raise ConfigError(
            f"rollout.max_episode_tokens: {limit} tokens do not fit in model.max_model_len = {held}"
        )
    return limit


def completion_token_limit(cfg: RunConfig) -> int:
    """Tokens of one rollout's completion: one answer, or a multi-turn episode's answers and feedback
    (everything after the first prompt)."""
    if cfg.rollout.turns == 1:
        return cfg.rollout.max_new_tokens
    return episode_token_limit(cfg) - cfg.data.max_prompt_tokens


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults <- the YAML file at `path` <- `key.sub=value` overrides. Raises ConfigError."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_yaml(Path(path))
    for item in overrides:
        _apply_override(data, item)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key.sub=value")
    value = yaml.safe_load(raw) if raw.strip() else None
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _one_line(exc: ValidationError, path: str | Path | None) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif isinstance(err.get("ctx", {}).get("error"), ConfigError):
        return str(err["ctx"]["error"])
    where = f"{path}: " if path else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}{loc or 'config'}: {msg}{more}"


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML, with every default spelled out."""
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)
