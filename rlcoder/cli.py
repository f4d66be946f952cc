"""The `rlcoder` command line: parses arguments and validates the config before any heavy import.

Each command's handler lives in the module that owns the work and is imported only when that
command runs, so `rlcoder --help` and config errors cost no torch, Ray or vLLM import.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from reward.options import add_serve_args
from rlcoder.config import ConfigError, RunConfig, load_config

# command path -> (help line, "module:function" taking the parsed args, argument adder)
Handler = Callable[[argparse.Namespace], int]


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML run config (defaults apply where it is silent)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="dotted config overrides")


def _add_tiny_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def _add_data_verify_args(p: argparse.ArgumentParser) -> None:
    from rlcoder.data_cli import add_verify_args

    add_verify_args(p)


def _add_data_dedup_args(p: argparse.ArgumentParser) -> None:
    from rlcoder.data_cli import add_dedup_args

    add_dedup_args(p)


def _late(module: str, adder: str) -> Callable[[argparse.ArgumentParser], None]:
    """An argument adder that lives in the command's own module (imported when the parser is built)."""

    def add(p: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), adder)(p)

    return add


COMMANDS: dict[tuple[str, ...], tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    ("train",): (
        "run the config's stages (sft, then grpo) as one resumable job",
        "rlcoder.train:cmd_train",
        _add_config_args,
    ),
    ("config",): (
        "validate a run config and print it resolved",
        "rlcoder.cli:cmd_config",
        _add_config_args,
    ),
    ("sft",): (
        "SFT initialization on reference solutions (learner.sft.stages in order) into <run_dir>/sft",
        "rlcoder.sft:cmd_sft",
        _add_config_args,
    ),
    ("eval",): (
        "sample n completions per eval problem with the rollout fleet and report pass@1 / pass@k",
        "rlcoder.evaluate:cmd_eval",
        _late("rlcoder.evaluate", "add_eval_args"),
    ),
    ("replay",): (
        "re-score stored rollouts (no model, no GPU) and diff the verdicts against the recorded ones",
        "rlcoder.replay_cli:cmd_replay",
        _late("rlcoder.replay_cli", "add_replay_args"),
    ),
    ("report",): (
        "summarize stored verdicts: pass rate per step/difficulty/subset, verdicts, pass@k; HTML charts",
        "rlcoder.replay_cli:cmd_report",
        _late("rlcoder.replay_cli", "add_report_args"),
    ),
    ("export",): (
        "write passing completions as an SFT (rejection-sampling) dataset that `rlcoder sft` reads",
        "rlcoder.replay_cli:cmd_export",
        _late("rlcoder.replay_cli", "add_export_args"),
    ),
    ("tiny-model",): (
        "build the tiny offline model and tokenizer (deterministic, no download)",
        "rlcoder.tiny_model:cmd_tiny_model",
        _add_tiny_model_args,
    ),
    ("reward", "serve"): (
        "run the reward scoring service (HTTP)",
        "reward.server:cmd_serve",
        add_serve_args,
    ),
    ("data", "verify"): (
        "run every reference solution against its own tests in the sandbox; reject failures",
        "rlcoder.data_cli:cmd_data_verify",
        _add_data_verify_args,
    ),
    ("data", "dedup"): (
        "remove exact and near-duplicate problems and those overlapping HumanEval prompts",
        "rlcoder.data_cli:cmd_data_dedup",
        _add_data_dedup_args,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlcoder",
        description="RL post-training of code LLMs against executed unit tests.",
    )
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {
        (): parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    }
    for path, (help_line, target, add_args) in COMMANDS.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                sub = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = sub.add_subparsers(dest=f"command_{depth}", metavar="COMMAND", required=True)
        cmd = groups[path[:-1]].add_parser(path[-1], help=help_line, description=help_line)
        add_args(cmd)
        cmd.set_defaults(_target=target)
    return parser


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
    return 0


def _resolve(target: str) -> Handler:
    module, func = target.split(":")
    handler: Handler = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _resolve(args._target)(args)
    except ConfigError as exc:
        print(f"rlcoder: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlcoder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
