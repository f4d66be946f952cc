"""The sections of the run config: one typed pydantic model per part of a run (model, lora, data,
rollout, reward, learner and its sft/grpo/ppo parts, cluster, eval, ray, logging), a one-line doc per
field, unknown keys rejected. RunConfig (rlcoder.config) holds one of each."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(Section):
    name_or_path: str = Field("tiny", description="HF hub id, local directory, or 'tiny' (built offline)")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="weights dtype")
    max_model_len: int = Field(1024, gt=0, description="prompt + completion tokens the engine holds")
    trust_remote_code: bool = Field(False, description="passed to transformers and vLLM")
    push_to_hub: str | None = Field(
        None, description="hub repo id the final model and its model card are pushed to (None = no push)"
    )


class LoraSection(Section):
    enabled: bool = Field(False, description="train a LoRA adapter instead of full weights")
    r: int = Field(16, gt=0, description="LoRA rank")
    alpha: int = Field(32, gt=0, description="LoRA alpha")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="module names that get adapters",
    )


class DataSection(Section):
    train_source: str = Field(
        "bundled:train", description="'bundled:<split>', a hub id, or a parquet/jsonl/arrow path"
    )
    eval_source: str = Field(
        "bundled:eval", description="held-out problems for eval, same forms as train_source"
    )
    limit: int | None = Field(None, gt=0, description="use only the first N problems")
    prompt_style: Literal["auto", "instruct", "complete"] = Field(
        "auto", description="'auto' follows each problem's own style"
    )
    max_prompt_tokens: int = Field(512, gt=0, description="prompts longer than this are dropped")
    system_prompt: str = Field(
        "You are a careful Python programmer. Answer with one fenced ```python code block.",
        description="system message of every chat prompt",
    )
    min_pass_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="RL: keep only problems whose labelled pass rate is at least this"
    )
    max_pass_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="RL: keep only problems whose labelled pass rate is at most this"
    )
    unlabelled: Literal["keep", "drop"] = Field(
        "keep", description="with min/max_pass_rate: what to do with problems that have no pass rate label"
    )
    public_tests: int = Field(
        1,
        gt=0,
        description="multi-turn: tests of a problem whose failures feedback may show (the first N test "
        "functions, check() asserts or stdio cases); the rest stay hidden and count only in the reward",
    )

    @model_validator(mode="after")
    def _pass_rate_range(self) -> DataSection:
        low, high = self.min_pass_rate, self.max_pass_rate
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_pass_rate {low} > max_pass_rate {high}: no problem could be selected")
        return self


class RolloutSection(Section):
    engine: Literal["vllm", "transformers"] = Field("vllm", description="inference engine of each worker")
    num_workers: int = Field(1, gt=0, description="rollout actors")
    gpus_per_worker: float = Field(0.0, ge=0.0, description="GPUs each actor reserves (0 on CPU)")
    tensor_parallel_size: int = Field(1, gt=0, description="vLLM tensor parallelism inside one actor")
    samples_per_prompt: int = Field(4, gt=0, description="completions per prompt: the GRPO group size")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling")
    max_new_tokens: int = Field(256, gt=0, description="completion length limit")
    max_off_policy_lag: int = Field(
        0, ge=0, description="drop samples older than this many updates (0 = on-policy)"
    )
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0, description="vLLM GPU memory fraction")
    sync_check_tolerance: float = Field(
        0.05, gt=0.0, description="max mean |logprob gap| between learner and engine after a weight sync"
    )
    turns: int = Field(
        1, gt=0, description="max turns of an episode; above 1, failed answers get execution feedback"
    )
    feedback_max_chars: int = Field(
        1200, ge=200, description="multi-turn: the feedback message is truncated to this many characters"
    )
    turn_discount: float = Field(
        1.0, gt=0.0, le=1.0, description="multi-turn: the reward is multiplied by this per extra turn"
    )
    max_episode_tokens: int | None = Field(
        None,
        gt=0,
        description="multi-turn: prompt + all turns' tokens (None = model.max_model_len); an episode ends "
        "when its next turn (prompt so far + max_new_tokens) would not fit",
    )


class RewardSection(Section):
    url: str | None = Field(None, description="reward service URL; None starts one for the run")
    host: str = Field("127.0.0.1", description="bind address of a service this run starts")
    port: int = Field(0, ge=0, lt=65536, description="port of a service this run starts (0 = any free)")
    mode: Literal["binary", "pass_fraction"] = Field("binary", description="how a verdict becomes a reward")
    timeout_s: float | Literal["auto"] = Field(
        10.0,
        description="wall-clock limit per execution; 'auto': auto_timeout_multiple x the problem's measured "
        "reference runtime, within [auto_timeout_floor_s, auto_timeout_ceiling_s] (evalplus-style)",
    )
    auto_timeout_multiple: float = Field(10.0, gt=1.0, description="timeout_s auto: x the reference runtime")
    auto_timeout_floor_s: float = Field(1.0, gt=0.0, description="timeout_s auto: never less than this")
    auto_timeout_ceiling_s: float = Field(
        10.0, gt=0.0, description="timeout_s auto: never more (nor unmeasured)"
    )
    memory_mb: int = Field(1024, gt=0, description="address-space limit per execution")
    workers: int = Field(2, gt=0, description="concurrent sandboxed executions in the service")
    actor_cpus: float = Field(
        1.0, gt=0.0, description="CPUs a cluster run reserves for the reward service actor"
    )
    max_concurrency: int = Field(8, gt=0, description="client requests in flight")
    request_timeout_s: float = Field(120.0, gt=0.0, description="client timeout for one batch request")
    retries: int = Field(3, ge=0, description="client retries on transport errors")

    @field_validator("timeout_s")
    @classmethod
    def _positive(cls, value: float | str) -> float | str:
        if value != "auto" and not float(value) > 0:
            raise ValueError(f"must be > 0 or 'auto', got {value}")
        return value

    def limit_s(self, reference_runtime_s: float | None = None) -> float:
        """The wall-clock limit of one execution: timeout_s, or with 'auto' the multiple of the
        problem's reference runtime within the floor and ceiling (the ceiling when it is unmeasured)."""
        if self.timeout_s != "auto":
            return float(self.timeout_s)
        if reference_runtime_s is None:
            return self.auto_timeout_ceiling_s
        scaled = self.auto_timeout_multiple * reference_runtime_s
        return min(max(scaled, self.auto_timeout_floor_s), self.auto_timeout_ceiling_s)


class SftSection(Section):
    lr: float = Field(1e-4, gt=0.0, description="learning rate")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of the steps spent warming up")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    epochs: float = Field(1.0, gt=0.0, description="passes over each stage's data")
    batch_size: int = Field(8, gt=0, description="examples per optimizer step (all processes together)")
    examples_per_device_batch: int | None = Field(
        None, gt=0, description="examples in one forward/backward (None = batch_size / num_processes)"
    )
    max_length: int = Field(
        1024, gt=0, description="examples longer than this (prompt + completion tokens) are dropped"
    )
    mutants_per_problem: int = Field(
        0,
        ge=0,
        description="also train on this many single-edit mutants of each reference solution (rlcoder/"
        "mutants.py): buggy code next to correct code, as in real SFT data; a laptop demo gives RL a choice",
    )
    merge_lora: bool = Field(
        True, description="with lora.enabled: save the merged model (True) or the adapter alone (False)"
    )
    stages: list[str] = Field(
        default_factory=lambda: ["bundled:train"],
        min_length=1,
        description="data mixtures trained in order (OpenCoder's broad then high-quality stages)",
    )


class GrpoSection(Section):
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field("dapo", description="TRL loss aggregation")
    beta: float = Field(0.0, ge=0.0, description="KL coefficient against the reference policy")
    epsilon: float = Field(0.2, gt=0.0, description="clip range of the policy ratio")
    top_entropy_quantile: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="train only on this top fraction of tokens by entropy (the forking tokens; 0.2 in "
        "'Beyond the 80/20 rule'); 1.0 trains on every token",
    )
    importance_sampling_cap: float | None = Field(
        2.0,
        gt=0.0,
        description="truncation of the vLLM/learner importance-sampling ratio; null turns the correction "
        "off and saves a forward pass per step (for fp32 on CPU, where the two agree to ~1e-6)",
    )


class PpoSection(Section):
    critic: Literal["value_head", "separate"] = Field(
        "value_head",
        description="value_head: a linear head on the policy's last hidden state (shared backbone); "
        "separate: its own model initialized from the RL stage's starting checkpoint",
    )
    critic_lr: float | None = Field(None, gt=0.0, description="critic learning rate (None = learner.lr)")
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="discount")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0.0, lt=1.0, description="clip range of the policy ratio")
    value_clip: float = Field(0.2, gt=0.0, description="clip range of the value loss")
    vf_coef: float = Field(0.1, ge=0.0, description="weight of the value loss in the total loss")
    entropy_coef: float = Field(0.0, ge=0.0, description="weight of the entropy bonus (0 = none)")
    kl_coef: float = Field(
        0.0, ge=0.0, description="per-token KL penalty against the reference (starting) policy (0 = none)"
    )
    whiten_advantages: bool = Field(True, description="normalize advantages over each batch of rollouts")
    epochs: int = Field(2, gt=0, description="minibatch epochs per batch of rollouts")
    completions_per_minibatch: int | None = Field(
        None,
        gt=0,
        description="completions per optimizer step within an epoch (None = the whole step's batch)",
    )
    target_kl: float | None = Field(None, gt=0.0, description="stop the epochs early above this KL")


class LearnerSection(Section):
    algo: Literal["grpo", "ppo"] = Field("grpo", description="RL algorithm: the RL stage in `stages`")
    lr: float = Field(1e-5, gt=0.0, description="RL learning rate")
    lr_scheduler: str = Field("constant", description="transformers scheduler name")
    steps: int = Field(10, gt=0, description="RL steps: one batch of rollouts and its update each")
    prompts_per_step: int = Field(4, gt=0, description="problems sampled per RL step")
    completions_per_device_batch: int = Field(8, gt=0, description="completions in one forward/backward")
    num_processes: int = Field(1, gt=0, description="learner processes (data parallel world size)")
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient clipping")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory (False on CPU)")
    torch_threads: int | None = Field(None, gt=0, description="torch intra-op threads (None = default)")
    save_every: int = Field(1, gt=0, description="checkpoint every N steps")
    dynamic_sampling_rounds: int = Field(
        0,
        ge=0,
        description="DAPO dynamic sampling: extra generation rounds per step that replace groups "
        "whose rewards are all equal (no advantage) by groups of fresh prompts; 0 = off",
    )
    mask_truncated: bool = Field(False, description="no loss on completions cut at max_new_tokens (DAPO)")
    save_total_limit: int = Field(
        2, gt=0, description="complete RL checkpoints kept (older ones are deleted; resume needs one)"
    )
    sft: SftSection = Field(default_factory=SftSection)
    grpo: GrpoSection = Field(default_factory=GrpoSection)
    ppo: PpoSection = Field(default_factory=PpoSection)


class ClusterSection(Section):
    """The GPUs a GPU run is planned against (rlcoder.learn.memory_plan); a CPU run ignores it."""

    gpus_per_node: int = Field(8, gt=0, description="GPUs on each node")
    gpu_memory_gb: float = Field(80.0, gt=0.0, description="memory of one GPU, GB (1e9 bytes)")
    nodes: int | None = Field(
        None, gt=0, description="nodes available; None = plan only (report how many the run needs)"
    )


class EvalSection(Section):
    samples_per_problem: int = Field(
        4, gt=0, description="completions sampled per problem when measuring pass rates"
    )
    around_rl: bool = Field(
        True, description="measure the pass rate on the train problems before and after RL"
    )
    problems: int | None = Field(
        None, gt=0, description="evaluate around RL on only the first N train prompts (None = all)"
    )


class RaySection(Section):
    address: str | None = Field(
        None, description="cluster to join ('auto' or host:port); None starts a local one"
    )
    num_cpus: int | None = Field(None, gt=0, description="CPUs of a local Ray (None = all)")
    include_dashboard: bool = Field(False, description="start Ray's dashboard with a local Ray")


class LoggingSection(Section):
    log_every: int = Field(1, gt=0, description="RL: print a progress line every N steps (and the last)")
    sft_log_every: int | None = Field(
        None,
        gt=0,
        description="SFT: one line every N optimizer steps with the mean loss over them (None = about 10 "
        "lines per stage)",
    )
    tensorboard: bool = Field(True, description="also write TensorBoard event files")
