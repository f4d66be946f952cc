"""SFT initialization (`rlcoder sft`): TRL's SFTTrainer on problems' reference solutions, loss on the
completion only, full weights or LoRA, over one or more data stages in order (OpenCoder's broad then
high-quality mixtures); the result is a Hugging Face checkpoint the RL stage starts from.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, RunConfig, sft_batch_plan
from rlcoder.console import log_stderr, sft_progress_line
from rlcoder.data.verification import SyncScorer
from rlcoder.learn.loader import load_causal_lm, load_tokenizer, with_lora
from rlcoder.records import Problem, VerdictStatus

SUMMARY_FILE = "sft_summary.json"  # written last: its presence marks a complete checkpoint


@dataclass
class StageReport:
    source: str
    examples: int  # kept for training
    dropped_prompt_too_long: int
    dropped_over_max_length: int
    steps: int = 0
    losses: list[float] = field(default_factory=list)  # one per logged optimizer step, in order
    duration_s: float = 0.0


@dataclass
class SftSummary:
    model_path: str  # where training started
    lora: bool
    merged: bool  # lora: the adapter merged into the weights (False: out_dir holds the adapter alone)
    stages: list[StageReport]
    duration_s: float


# ---------------------------------------------------------------------------------------------
# Data


def sft_dataset(problems: list[Problem], tokenizer: Any, cfg: RunConfig):  # -> (datasets.Dataset, counts)
    """Prompt/completion rows (TRL's prompt-completion format) for the problems' reference solutions,
    and for failing mutants of them when learner.sft.mutants_per_problem asks for some.

    Problems whose prompt is over data.max_prompt_tokens, or whose whole example is over
    learner.sft.max_length, are dropped rather than truncated: a truncated example teaches the model
    to stop mid-solution with no end of turn. Returns the dataset and the dropped counts.
    """
    import datasets

    from rlcoder.data.prompts import PromptTooLong, render_sft_example

    datasets.disable_progress_bars()  # TRL's map() bars would bury the one progress line per step

    rows: dict[str, list[str]] = {"prompt": [], "completion": []}
    too_long_prompt = too_long = 0
    for problem in with_mutants(problems, cfg.learner.sft.mutants_per_problem):
        try:
            ex = render_sft_example(
                problem,
                tokenizer,
                style=cfg.data.prompt_style,
                system_prompt=cfg.data.system_prompt,
                max_prompt_tokens=cfg.data.max_prompt_tokens,
            )
        except PromptTooLong:
            too_long_prompt += 1
            continue
        if ex.n_tokens > cfg.learner.sft.max_length:
            too_long += 1
            continue
        rows["prompt"].append(ex.prompt)
        rows["completion"].append(_end_on_eos(ex.completion, tokenizer.eos_token))
    counts = {"dropped_prompt_too_long": too_long_prompt, "dropped_over_max_length": too_long}
    return datasets.Dataset.from_dict(rows), counts


def with_mutants(
    problems: list[Problem], per_problem: int, scorer: SyncScorer | None = None
) -> list[Problem]:
    """The problems, each followed by up to `per_problem` copies whose solution is a single-edit
    mutant that fails the problem's tests quickly (checked by `scorer`, the sandbox by default;
    mutants that pass, loop or exhaust memory are skipped: they would only slow RL's reward down)."""
    if per_problem == 0:
        return list(problems)
    from rlcoder.data.mutants import mutants
    from rlcoder.data.verification import reference_item

    if scorer is None:
        from reward import score as scorer
    candidates = [
        replace(p, solution=m)
        for p in problems
        for m in mutants(p.solution, 4 * per_problem, seed=p.problem_id)
    ]
    verdicts = scorer([reference_item(c, timeout_s=2.0) for c in candidates])
    failing: dict[str, list[Problem]] = {}
    for c, v in zip(candidates, verdicts, strict=True):
        if v.status in (VerdictStatus.FAIL, VerdictStatus.ERROR):
            failing.setdefault(c.problem_id, []).append(c)
    return [q for p in problems for q in [p, *failing.get(p.problem_id, [])[:per_problem]]]


def _end_on_eos(completion: str, eos: str | None) -> str:
    # ChatML puts a newline after <|im_end|>; TRL appends the eos to any completion that does not end
    # with it, which would teach "<|im_end|>\n<|im_end|>". Generation stops at the first eos anyway.
    stripped = completion.rstrip()
    return stripped if eos and stripped.endswith(eos) else completion


def stage_dataset(source: str, tokenizer: Any, cfg: RunConfig):  # -> (datasets.Dataset, counts)
    """One stage's training rows: problems' reference solutions; for "conversations:<source>",
    multi-turn conversations (a file or hub dataset) with the loss on the assistant turns; for
    "conversations:feedback:<problem source>", feedback conversations built from those problems,
    mixed with their single-turn conversations."""
    from rlcoder.data.problems import ProblemLoadError, open_rows
    from rlcoder.learn.conversations import (
        FEEDBACK_PREFIX,
        PREFIX,
        ConversationError,
        conversation_dataset,
        feedback_rows,
        plain_rows,
    )

    if not source.startswith(PREFIX):
        return sft_dataset(load_stage(source, cfg), tokenizer, cfg)
    inner = source[len(PREFIX) :]
    if inner.startswith(FEEDBACK_PREFIX):
        # the feedback conversations and the plain single-turn ones (with the configured mutants):
        # a stage of feedback conversations alone made the tiny model forget how to answer a fresh
        # prompt (measured: 0% at turn 1 and at turn 2)
        problems = load_stage(inner[len(FEEDBACK_PREFIX) :], cfg)
        plain = plain_rows(with_mutants(problems, cfg.learner.sft.mutants_per_problem), cfg)
        return conversation_dataset(
            feedback_rows(problems, cfg) + plain, tokenizer, cfg.learner.sft.max_length
        )
    try:
        rows = open_rows(inner)
        return conversation_dataset(rows, tokenizer, cfg.learner.sft.max_length, limit=cfg.data.limit)
    except (ProblemLoadError, ConversationError) as exc:
        raise ConfigError(f"learner.sft.stages: {source}: {exc}") from None


def load_stage(source: str, cfg: RunConfig) -> list[Problem]:
    """One stage's problems; a source that cannot be read is a ConfigError naming the stage."""
    from rlcoder.data.problems import ProblemLoadError, load_problems

    try:
        problems = load_problems(source, limit=cfg.data.limit)
    except ProblemLoadError as exc:
        raise ConfigError(f"learner.sft.stages: {exc}") from None
    assert isinstance(problems, list)
    return problems


# ---------------------------------------------------------------------------------------------
# Training


def trainer_args(cfg: RunConfig, work_dir: Path, stage: int):  # -> trl.SFTConfig
    """Our config as TRL's SFTConfig, in this one place."""
    from trl import SFTConfig

    sft = cfg.learner.sft
    plan = sft_batch_plan(cfg)
    on_gpu = _cuda_available()
    return SFTConfig(
        output_dir=str(work_dir / f"stage-{stage}"),
        learning_rate=sft.lr,
        lr_scheduler_type=sft.lr_scheduler,
        warmup_steps=sft.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the steps
        weight_decay=sft.weight_decay,
        num_train_epochs=sft.epochs,
        per_device_train_batch_size=plan.examples_per_device_batch,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        max_grad_norm=cfg.learner.max_grad_norm,
        max_length=sft.max_length,
        completion_only_loss=True,
        gradient_checkpointing=cfg.learner.gradient_checkpointing,
        # mixed precision only on a GPU: TRL defaults bf16 on, which fails or crawls on CPU
        bf16=cfg.model.dtype == "bfloat16" and on_gpu,
        fp16=cfg.model.dtype == "float16" and on_gpu,
        seed=cfg.seed + stage,
        data_seed=cfg.seed + stage,
        logging_steps=1,
        save_strategy="no",
        # TensorBoard: every step's loss, lr and grad norm in <run_dir>/sft/tensorboard/stage-N
        report_to=["tensorboard"] if cfg.logging.tensorboard else "none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not on_gpu,
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def sft_log_interval(cfg: RunConfig, max_steps: int) -> int:
    """Optimizer steps per SFT progress line: logging.sft_log_every, else about 10 lines per stage."""
    return cfg.logging.sft_log_every or max(1, math.ceil(max_steps / 10))


def _progress_callback(stage: int, cfg: RunConfig, report: StageReport):  # -> transformers.TrainerCallback
    from transformers import TrainerCallback

    started = time.monotonic()
    pending: list[float] = []  # losses of the steps since the last line
    n_stages = len(cfg.learner.sft.stages)

    class Progress(TrainerCallback):
        """One line per logging interval on stderr (mean loss, lr, ETA); every step's loss is kept."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            loss = float(logs["loss"])
            report.losses.append(loss)
            pending.append(loss)
            step, total = state.global_step, state.max_steps
            if step % sft_log_interval(cfg, total) and step != total:
                return
            line = sft_progress_line(
                stage + 1,
                n_stages,
                step,
                total,
                sum(pending) / len(pending),
                float(logs.get("learning_rate", 0.0)),
                time.monotonic() - started,
            )
            pending.clear()
            log_stderr(line)

    return Progress()


def _load_model(cfg: RunConfig, model_path: str) -> Any:
    # One adapter for every stage: stage 2 continues the adapter stage 1 trained.
    return with_lora(load_causal_lm(cfg, model_path), cfg)


def _prepare_stages(tokenizer: Any, cfg: RunConfig) -> list[tuple[Any, StageReport]]:
    """Every stage's dataset, built before any training so a bad source fails in seconds."""
    out = []
    sft = cfg.learner.sft
    for i, source in enumerate(sft.stages):
        dataset, dropped = stage_dataset(source, tokenizer, cfg)
        report = StageReport(source=source, examples=len(dataset), **dropped)
        log_stderr(
            f"sft stage {i + 1}/{len(sft.stages)}: {source}: {report.examples} examples (dropped: "
            f"{report.dropped_prompt_too_long} prompt over data.max_prompt_tokens, "
            f"{report.dropped_over_max_length} over learner.sft.max_length = {sft.max_length} tokens)",
        )
        if report.examples == 0:
            raise ConfigError(f"learner.sft.stages[{i}]: {source} left no examples to train on")
        out.append((dataset, report))
    return out


def _train_stage(model: Any, tokenizer: Any, cfg: RunConfig, work_dir: Path, stage: int, data: Any) -> None:
    from transformers import PrinterCallback
    from trl import SFTTrainer

    dataset, report = data
    started = time.monotonic()
    # transformers 5 reads the TensorBoard folder from the environment only (as in learn/grpo.py)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(work_dir.parent / "tensorboard" / f"stage-{stage + 1}")
    trainer = SFTTrainer(
        model=model,
        args=trainer_args(cfg, work_dir, stage),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[_progress_callback(stage, cfg, report)],
    )
    # Progress prints one line per step on stderr; the Trainer's own printer writes dicts to stdout.
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    report.steps = int(result.global_step)
    report.duration_s = time.monotonic() - started
    if not all(math.isfinite(x) for x in report.losses):
        raise FloatingPointError(f"sft stage {stage + 1}: non-finite loss in {report.losses}")


def _save(model: Any, tokenizer: Any, cfg: RunConfig, target: Path) -> bool:
    """Write the model (merged, or the LoRA adapter alone) and the tokenizer; True if merged."""
    merged = False
    if cfg.lora.enabled and cfg.learner.sft.merge_lora:
        model = model.merge_and_unload()
        merged = True
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return merged


def run_sft(cfg: RunConfig, model_path: str, out_dir: Path) -> Path:
    """Train on each of cfg.learner.sft.stages in order, starting from `model_path`; write the final
    checkpoint (model or adapter, tokenizer, sft_summary.json) to `out_dir` and return it.

    The checkpoint is written beside `out_dir` and renamed into place, so a crash or a full disk
    leaves either the previous complete checkpoint or none, never half of one.
    """
    import torch

    if cfg.learner.torch_threads:
        torch.set_num_threads(cfg.learner.torch_threads)
    torch.manual_seed(cfg.seed)
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = out_dir.parent / f".{out_dir.name}.work"
    shutil.rmtree(work_dir, ignore_errors=True)
    tokenizer = load_tokenizer(cfg, model_path)
    stages = _prepare_stages(tokenizer, cfg)
    model = _load_model(cfg, model_path)
    for i, data in enumerate(stages):
        _train_stage(model, tokenizer, cfg, work_dir, i, data)
    reports = [report for _, report in stages]
    staging = work_dir / "final"
    merged = _save(model, tokenizer, cfg, staging)
    summary = SftSummary(model_path, cfg.lora.enabled, merged, reports, time.monotonic() - started)
    (staging / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2))
    _replace_dir(staging, out_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    log_stderr(f"sft: wrote {out_dir} in {summary.duration_s:.0f}s")
    return out_dir


def _replace_dir(new: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def sft_complete(out_dir: Path) -> bool:
    """Whether `out_dir` holds a finished SFT checkpoint (the summary is written last)."""
    return (Path(out_dir) / SUMMARY_FILE).is_file()


def read_summary(out_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((Path(out_dir) / SUMMARY_FILE).read_text())
    return summary
