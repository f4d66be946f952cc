"""`rlcoder config`, and the run config every command builds from --config and dotted overrides."""

from __future__ import annotations

import argparse
import sys

from rlcoder.config import RunConfig, load_config


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML run config (defaults apply where it is silent)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="dotted config overrides")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """`train` and `sft`: the config, and what to do with a run dir started with another config."""
    add_config_args(p)
    p.add_argument(
        "--new-run",
        action="store_true",
        help="if run_dir was started with another config, start <run_dir>-N instead of stopping",
    )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run config named by --config and the overrides; ConfigError on bad input."""
    return load_config(args.config, args.overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from rlcoder.config import batch_plan, dump_config, ppo_minibatches

    cfg = config_from_args(args)
    sys.stdout.write(dump_config(cfg))
    plan = batch_plan(cfg)
    head = (
        f"# batch: {plan.prompts_per_step} prompts x {plan.samples_per_prompt} samples = "
        f"{plan.completions_per_step} completions/step, "
    )
    if "ppo" in cfg.stages:
        minibatches, epochs = ppo_minibatches(cfg), cfg.learner.ppo.epochs
        size = plan.completions_per_step // minibatches
        print(
            f"{head}{minibatches} minibatches of {size} x {epochs} epochs (up to {minibatches * epochs} "
            f"optimizer steps), device batches of {plan.completions_per_device_batch}"
        )
    else:
        print(
            f"{head}{plan.gradient_accumulation_steps} accumulation steps of "
            f"{plan.completions_per_device_batch} x {plan.num_processes} processes"
        )
    from rlcoder.run.memory_plan import check_fits, describe, memory_plan, model_shape

    shape = model_shape(cfg.model.name_or_path)
    if shape is None:
        print(
            f"# memory plan: no shape known for {cfg.model.name_or_path} (a local directory with config.json)"
        )
        return 0
    mem = memory_plan(cfg, shape)
    print("\n".join(describe(mem, cfg)))
    check_fits(mem, cfg)  # ConfigError: main prints it and exits non-zero
    return 0
