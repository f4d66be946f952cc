"""The GRPO learner: TRL 1.16's GRPOTrainer, fed by our RolloutSource through `rollout_func` and scored
by the reward service through an async reward function; the fleet gets the new weights before every
generation and each step's records go to the run directory.

One RL step, as TRL drives it, through the four hooks of `GrpoStep`:
# SYNC (`sync`, before the step's generation) -> # ROLLOUT (`rollout_func`) -> # SCORE (`unit_tests`)
-> # UPDATE (TRL's loss and optimizer step) -> records and progress (`StepLog`, TRL's callback).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from rlcoder.config import RunConfig, batch_plan, completion_token_limit
from rlcoder.learn import dist
from rlcoder.learn.loader import load_causal_lm, lora_config
from rlcoder.learn.step import RLSetup, StepRecord, loss_mask
from rlcoder.learn.weight_sync import fleet_sync_for


def grpo_args(cfg: RunConfig, output_dir: Any, *, on_gpu: bool) -> Any:
    """Our config as TRL's GRPOConfig: the one place the mapping lives."""
    from trl import GRPOConfig

    plan = batch_plan(cfg)
    learner, grpo = cfg.learner, cfg.learner.grpo
    sharded = on_gpu and learner.num_processes > 1
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=learner.steps,
        learning_rate=learner.lr,
        lr_scheduler_type=learner.lr_scheduler,
        max_grad_norm=learner.max_grad_norm,
        # TRL counts completions per device; one generation feeds one optimizer step.
        per_device_train_batch_size=plan.completions_per_device_batch,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        steps_per_generation=plan.gradient_accumulation_steps,
        num_generations=plan.samples_per_prompt,
        max_completion_length=completion_token_limit(cfg),  # only dr_grpo reads this
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
        gradient_checkpointing=learner.gradient_checkpointing and not sharded,
        use_cpu=not on_gpu,
        **fsdp_args(cfg, sharded),
        seed=cfg.seed,
        save_strategy="steps",
        save_steps=learner.save_every,
        save_total_limit=learner.save_total_limit,
        logging_steps=1,
        report_to=["tensorboard"] if cfg.logging.tensorboard else "none",
        remove_unused_columns=False,  # the reward function needs rollout_id
        disable_tqdm=True,  # StepLog prints one line per step instead
        dataloader_num_workers=0,
    )


def fsdp_args(cfg: RunConfig, sharded: bool) -> dict[str, Any]:
    """FSDP2 through TrainingArguments on N GPU ranks: every decoder layer sharded, activation
    checkpointing inside FSDP, weights loaded on rank 0 and broadcast (no full copy per rank in host
    RAM), sharded checkpoints that resume. On CPU accelerate ignores FSDP (use_cpu: DDP over gloo)."""
    if not sharded:
        return {}
    return {
        "fsdp": "full_shard auto_wrap",
        "fsdp_config": {
            "fsdp_version": 2,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "reshard_after_forward": True,
            "activation_checkpointing": cfg.learner.gradient_checkpointing,
            "cpu_ram_efficient_loading": True,
            "state_dict_type": "SHARDED_STATE_DICT",
        },
    }


class GrpoStep:
    """One GRPO step as TRL drives it, and the one owner of its record. TRL calls four hooks:
    `sync` (its vLLM `sync_weights`, before generating), `rollout_func`, the reward function
    `unit_tests`, and the `StepLog` callback that writes the step and prints its line."""

    def __init__(self, rl: RLSetup) -> None:
        self.rl = rl
        self.record = StepRecord(mask_truncated=rl.cfg.learner.mask_truncated)
        self.trainer: Any = None  # set by `attach`
        self._prompts = {p.text: p for p in rl.prompts}
        self._t0 = 0.0
        self._summary: dict[str, Any] = {}

    def attach(self, trainer: Any) -> None:
        """Stand in for the trainer's vLLM: TRL then syncs (and applies its IS correction) on our fleet."""
        self.trainer = trainer
        trainer.attach_fleet(
            fleet_sync_for(
                self.rl,
                self.record,
                model_getter=lambda: trainer.accelerator.unwrap_model(trainer.model),
                version_getter=lambda: trainer.state.global_step,
            )
        )

    # ROLLOUT
    def rollout_func(self, batch: list[str], trainer: Any) -> dict[str, list]:
        """TRL hands over the step's prompts, each repeated num_generations times in a row (its
        RepeatSampler); we ask the source for one group per distinct prompt, in the same order.
        Multi-turn episodes come with an env_mask: TRL trains only on the policy's tokens."""
        group = self.rl.cfg.rollout.samples_per_prompt
        distinct = batch[::group]
        if [p for p in distinct for _ in range(group)] != list(batch):
            raise RuntimeError("rollout_func: prompts are not in groups of samples_per_prompt; TRL changed?")
        step, prompts = trainer.state.global_step + 1, [self._prompts[p] for p in distinct]
        if self.rl.cfg.learner.dynamic_sampling_rounds:  # scored here, to refill uninformative groups
            rollouts = self.record.sample_informative(self.rl, prompts, step, trainer.state.global_step)
        else:
            rollouts = self.record.sample(self.rl, prompts, step)
        out = {
            "prompt_ids": [r.prompt_token_ids for r in rollouts],
            "completion_ids": [r.completion_token_ids for r in rollouts],
            "logprobs": [r.completion_logprobs for r in rollouts],
            "rollout_id": [r.rollout_id for r in rollouts],
        }
        mask_truncated = self.rl.cfg.learner.mask_truncated
        if any(r.turns for r in rollouts) or (
            mask_truncated and any(r.finish_reason == "length" for r in rollouts)
        ):
            out["env_mask"] = [loss_mask(r, mask_truncated) for r in rollouts]  # TRL trains only where 1
        return out

    # SCORE
    async def unit_tests(
        self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any
    ) -> list[float | None]:
        """TRL's reward function: None (unscorable: zero advantage, out of the group baseline) for
        infra errors and for samples older than rollout.max_off_policy_lag updates."""
        if self.rl.cfg.learner.dynamic_sampling_rounds:  # scored in rollout_func while refilling
            scored = {r.rollout_id: w for r, w in zip(self.record.rollouts, self.record.rewards, strict=True)}
            return [scored[i] for i in kwargs["rollout_id"]]
        by_id = {r.rollout_id: r for r in self.record.rollouts}
        rollouts = [by_id[i] for i in kwargs["rollout_id"]]
        return await self.record.score(self.rl, rollouts, kwargs["trainer_state"].global_step)

    # records and progress
    def callback(self) -> Any:
        from transformers import TrainerCallback

        me = self

        class StepLog(TrainerCallback):  # type: ignore[misc]
            """Writes each step's groups and metrics, prints one line per step, and marks
            checkpoints complete once TRL has fully written them."""

            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                me._t0 = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                me.step_end(state.global_step)

            def on_log(
                self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
            ) -> None:
                me.step_logged(state.global_step, logs or {})

            def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if dist.is_main():  # TRL saves on rank 0 (sharded state: every rank, then a barrier)
                    me.rl.stage.mark_complete(me.rl.stage.checkpoint(state.global_step))

        return StepLog()

    def step_end(self, step: int) -> None:
        total = time.perf_counter() - self._t0
        # rollout, reward and the pre-generation sync all run inside TRL's step; the rest is update
        self.record.times_s["update"] = max(total - sum(self.record.times_s.values()), 0.0)
        whole = self.record.gathered()  # rank 0: every rank's share of the step; None elsewhere
        if whole is None:
            self.record.clear()
            return
        self.rl.stage.write_step(step, whole.groups(step))
        self._summary = {"step": step, **whole.summary()}

    def step_logged(self, step: int, logs: dict[str, Any]) -> None:
        # TRL logs each step once, then a run summary at the end: record only the former
        if self._summary.get("step") != step or "train_runtime" in logs:
            return
        row = {**{k: v for k, v in logs.items() if isinstance(v, (int, float))}, **self._summary}
        self.record.finish(self.rl, row, "grpo")


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
    from transformers import PrinterCallback

    cfg, stage = rl.cfg, rl.stage
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(stage.root / "tensorboard")  # transformers 5 reads only this
    step = GrpoStep(rl)
    trainer = fleet_trainer_class()(
        model=load_causal_lm(cfg, model_path),
        reward_funcs=[step.unit_tests],
        args=grpo_args(cfg, stage.checkpoints, on_gpu=torch.cuda.is_available()),
        train_dataset=Dataset.from_list([{"prompt": p.text, "problem_id": p.problem_id} for p in rl.prompts]),
        processing_class=rl.tokenizer,
        peft_config=lora_config(cfg),
        rollout_func=step.rollout_func,
        callbacks=[step.callback()],
    )
    trainer.remove_callback(PrinterCallback)  # StepLog prints one readable line per step
    step.attach(trainer)
    # rank 0 rewinds the run directory to its last complete checkpoint; every rank resumes from it
    checkpoint = dist.broadcast_from_main(stage.resume_checkpoint() if dist.is_main() else None)
    if checkpoint:
        rl.log(f"[grpo] resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.sync_now()  # the fleet samples the final policy for evaluation
    if not dist.is_main():
        return
    final = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.save_pretrained(stage.final)
    rl.tokenizer.save_pretrained(stage.final)
