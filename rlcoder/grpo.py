"""The GRPO learner: TRL 1.16's GRPOTrainer, fed by our rollout fleet through `rollout_func` and
scored by the reward service through an async reward function; the fleet gets the new weights
before every generation and each step's records go to the run directory.

One RL step, as TRL drives it:  # ROLLOUT (rollout_func) -> # SCORE (unit_test_reward) ->
# UPDATE (TRL's loss and optimizer step) -> # SYNC (FleetSync.sync_weights, before the next ROLLOUT).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlcoder.config import RunConfig, batch_plan, episode_token_limit
from rlcoder.multiturn import env_mask_of
from rlcoder.prompts import PromptText
from rlcoder.records import Problem
from rlcoder.rl_loop import (
    StepBuffer,
    check_sequence,
    finish_step,
    groups_of,
    lora_config,
    sample_groups,
    score_rollouts,
    step_summary,
)
from rlcoder.run_dir import StageDir
from rlcoder.seams import PolicyFleet, RLSetup, Scorer


def grpo_args(cfg: RunConfig, output_dir: Path, *, on_gpu: bool) -> Any:
    """Our config as TRL's GRPOConfig: the one place the mapping lives."""
    from trl import GRPOConfig

    plan = batch_plan(cfg)
    lr, grpo = cfg.learner, cfg.learner.grpo
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=lr.steps,
        learning_rate=lr.lr,
        lr_scheduler_type=lr.lr_scheduler,
        max_grad_norm=lr.max_grad_norm,
        # TRL counts completions per device; one generation feeds one optimizer step.
        per_device_train_batch_size=plan.completions_per_device_batch,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        steps_per_generation=plan.gradient_accumulation_steps,
        num_generations=plan.samples_per_prompt,
        # one answer; a multi-turn episode holds all its turns and feedback (only dr_grpo reads this)
        max_completion_length=cfg.rollout.max_new_tokens
        if cfg.rollout.turns == 1
        else episode_token_limit(cfg) - cfg.data.max_prompt_tokens,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        loss_type=grpo.loss_type,
        beta=grpo.beta,
        epsilon=grpo.epsilon,
        top_entropy_quantile=grpo.top_entropy_quantile,
        # The fleet samples with vLLM; its logprobs differ from the learner's. Token-level truncated IS.
        vllm_importance_sampling_correction=grpo.importance_sampling_cap is not None,
        vllm_importance_sampling_mode="token_truncate",
        vllm_importance_sampling_clip_max=grpo.importance_sampling_cap,
        bf16=on_gpu and cfg.model.dtype == "bfloat16",
        gradient_checkpointing=lr.gradient_checkpointing,
        use_cpu=not on_gpu,
        seed=cfg.seed,
        save_strategy="steps",
        save_steps=lr.save_every,
        save_total_limit=2,
        logging_steps=1,
        report_to=["tensorboard"] if cfg.logging.tensorboard else "none",
        remove_unused_columns=False,  # the reward function needs problem_id
        disable_tqdm=True,  # the StepLog callback prints one line per step instead
        dataloader_num_workers=0,
    )


def make_rollout_func(
    fleet: PolicyFleet,
    prompts: dict[str, PromptText],
    cfg: RunConfig,
    buf: StepBuffer,
    env: RLSetup | None = None,
) -> Callable[[list[str], Any], dict[str, list]]:
    """TRL hands over the step's prompts with each repeated num_generations times in a row
    (its RepeatSampler); we ask the fleet for one group per distinct prompt, in the same order.
    Multi-turn episodes (rollout.turns > 1, which need `env`) come with an env_mask: TRL trains
    only on the policy's tokens, never on the feedback."""
    group = cfg.rollout.samples_per_prompt

    def rollout_func(batch: list[str], trainer: Any) -> dict[str, list]:
        distinct = batch[::group]
        if [p for p in distinct for _ in range(group)] != list(batch):
            raise RuntimeError("rollout_func: prompts are not in groups of samples_per_prompt; TRL changed?")
        step = trainer.state.global_step + 1
        rollouts = sample_groups(fleet, [prompts[p] for p in distinct], step, cfg, buf, env)
        out = {
            "prompt_ids": [r.prompt_token_ids for r in rollouts],
            "completion_ids": [r.completion_token_ids for r in rollouts],
            "logprobs": [r.completion_logprobs for r in rollouts],
            "rollout_id": [r.rollout_id for r in rollouts],
        }
        if cfg.rollout.turns > 1:
            out["env_mask"] = [env_mask_of(r) for r in rollouts]
        return out

    return rollout_func


def make_reward_func(
    scorer: Scorer, problems: dict[str, Problem], cfg: RunConfig, buf: StepBuffer
) -> Callable[..., Any]:
    """An async TRL reward function: verdicts from the reward service, rewards from verdicts.
    None (TRL: unscorable, zero advantage, out of the group baseline) for infra errors and for
    samples older than rollout.max_off_policy_lag updates."""

    async def unit_tests(
        prompts: Sequence[str], completions: Sequence[str], **kwargs: Any
    ) -> list[float | None]:
        by_id = {r.rollout_id: r for r in buf.rollouts}
        rollouts = [by_id[i] for i in kwargs["rollout_id"]]
        version = kwargs["trainer_state"].global_step
        return await score_rollouts(scorer, problems, rollouts, version, cfg, buf)

    return unit_tests


def make_callbacks(stage: StageDir, buf: StepBuffer, log: Callable[[str], None]) -> list[Any]:
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):  # type: ignore[misc]
        """Writes each step's groups and metrics to the run directory, prints one line per step,
        and marks checkpoints complete once TRL has fully written them."""

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step = state.global_step
            stage.write_step(step, groups_of(buf, step))
            total = time.perf_counter() - self._t0
            # rollout, reward and the pre-generation sync all run inside TRL's step; the rest is update
            buf.times_s["update"] = max(total - sum(buf.times_s.values()), 0.0)
            self._summary = {"step": step, **step_summary(buf)}

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            # TRL logs each step once, then a run summary at the end: record only the former
            logs = logs or {}
            if getattr(self, "_summary", {}).get("step") != state.global_step or "train_runtime" in logs:
                return
            row = {**{k: v for k, v in logs.items() if isinstance(v, (int, float))}, **self._summary}
            finish_step(stage, buf, row, log, "grpo", args.max_steps)

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            stage.mark_complete(stage.checkpoints / f"checkpoint-{state.global_step}")

    return [StepLog()]


# ---------------------------------------------------------------------------------------------
# Wiring it together


def fleet_trainer_class() -> type:
    """GRPOTrainer that treats our fleet as its vLLM. TRL applies its vLLM/learner importance-
    sampling correction, and calls `vllm_generation.sync_weights()` before generating after an
    optimizer step, only on its own vLLM path; our fleet is that vLLM, so we switch the path on
    and stand in for its generation object (FleetSync). Generation itself goes through rollout_func."""
    from trl import GRPOTrainer

    class FleetGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
        def attach_fleet(self, sync: Any) -> None:
            self.use_vllm = True
            self.vllm_generation = sync
            self._last_loaded_step = -1  # sync (and check) before the first generation too

        def sync_now(self) -> None:
            if self._last_loaded_step != self.state.global_step:
                self.vllm_generation.sync_weights()
                self._last_loaded_step = self.state.global_step

    return FleetGRPOTrainer


def train_grpo(rl: RLSetup, model_path: str) -> None:
    """Run GRPO to learner.steps (resuming if a complete checkpoint exists); save the final model
    (LoRA merged) to stage.final and leave the fleet on the final weights."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PrinterCallback

    from rlcoder.weight_sync import FleetSync

    cfg, stage, buf = rl.cfg, rl.stage, StepBuffer()
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(stage.root / "tensorboard")  # transformers 5 reads only this
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, cfg.model.dtype))
    trainer = fleet_trainer_class()(
        model=model,
        reward_funcs=[make_reward_func(rl.scorer, rl.problems, cfg, buf)],
        args=grpo_args(cfg, stage.checkpoints, on_gpu=torch.cuda.is_available()),
        train_dataset=Dataset.from_list([{"prompt": p.text, "problem_id": p.problem_id} for p in rl.prompts]),
        processing_class=rl.tokenizer,
        peft_config=lora_config(cfg),
        rollout_func=make_rollout_func(rl.fleet, {p.text: p for p in rl.prompts}, cfg, buf, rl),
        callbacks=make_callbacks(stage, buf, rl.log),
    )
    trainer.remove_callback(PrinterCallback)  # our StepLog prints one readable line per step
    first = rl.prompts[0]
    trainer.attach_fleet(
        FleetSync(
            rl.fleet,
            model_getter=lambda: trainer.accelerator.unwrap_model(trainer.model),
            version_getter=lambda: trainer.state.global_step,
            check_ids=check_sequence(first, rl.problems[first.problem_id], rl.tokenizer),
            adapter_dir=stage.root / "adapters",
            on_synced=lambda version, seconds: buf.add_time("sync", seconds),
        )
    )
    checkpoint = stage.resume_checkpoint()
    if checkpoint:
        rl.log(f"[grpo] resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.sync_now()  # the fleet samples the final policy for evaluation
    final = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.save_pretrained(stage.final)
    rl.tokenizer.save_pretrained(stage.final)
