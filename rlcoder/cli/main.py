"""The `rlcoder` command line: parses arguments and validates the config before any heavy import.

Each command's handler lives in its cli/ module and is imported only when that command runs, so
`rlcoder --help` and config errors cost no torch, Ray or vLLM import.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from reward.service.options import add_serve_args
from rlcoder.cli.config import add_config_args, add_run_args
from rlcoder.cli.tiny_model import add_tiny_model_args
from rlcoder.config import ConfigError
from rlcoder.console import one_line_error, quiet_console
from rlcoder.data.problems import ProblemLoadError

# command path -> (help line, "module:function" taking the parsed args, argument adder)
Handler = Callable[[argparse.Namespace], int]


def _add_data_verify_args(p: argparse.ArgumentParser) -> None:
    from rlcoder.cli.data import add_verify_args

    add_verify_args(p)


def _add_data_dedup_args(p: argparse.ArgumentParser) -> None:
    from rlcoder.cli.data import add_dedup_args

    add_dedup_args(p)


def _late(module: str, adder: str) -> Callable[[argparse.ArgumentParser], None]:
    """An argument adder that lives in the command's own module (imported when the parser is built)."""

    def add(p: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), adder)(p)

    return add


COMMANDS: dict[tuple[str, ...], tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    ("train",): (
        "run the config's stages (sft, then grpo) as one resumable job",
        "rlcoder.cli.train:cmd_train",
        add_run_args,
    ),
    ("config",): (
        "validate a run config and print it resolved",
        "rlcoder.cli.config:cmd_config",
        add_config_args,
    ),
    ("sft",): (
        "SFT initialization on reference solutions (learner.sft.stages in order) into <run_dir>/sft",
        "rlcoder.cli.sft:cmd_sft",
        add_run_args,
    ),
    ("eval",): (
        "sample n completions per eval problem with the rollout fleet and report pass@1 / pass@k",
        "rlcoder.cli.eval:cmd_eval",
        _late("rlcoder.cli.eval", "add_eval_args"),
    ),
    ("replay",): (
        "re-score stored rollouts (no model, no GPU) and diff the verdicts against the recorded ones",
        "rlcoder.cli.replay:cmd_replay",
        _late("rlcoder.cli.replay", "add_replay_args"),
    ),
    ("report",): (
        "summarize stored verdicts: pass rate per step/difficulty/subset, verdicts, pass@k; HTML charts",
        "rlcoder.cli.replay:cmd_report",
        _late("rlcoder.cli.replay", "add_report_args"),
    ),
    ("export",): (
        "write passing completions as an SFT (rejection-sampling) dataset that `rlcoder sft` reads",
        "rlcoder.cli.replay:cmd_export",
        _late("rlcoder.cli.replay", "add_export_args"),
    ),
    ("tiny-model",): (
        "build the tiny offline model and tokenizer (deterministic, no download)",
        "rlcoder.cli.tiny_model:cmd_tiny_model",
        add_tiny_model_args,
    ),
    ("reward", "serve"): (
        "run the reward scoring service (HTTP)",
        "reward.service.server:cmd_serve",
        add_serve_args,
    ),
    ("data", "verify"): (
        "run every reference solution against its own tests in the sandbox; reject failures",
        "rlcoder.cli.data:cmd_data_verify",
        _add_data_verify_args,
    ),
    ("data", "dedup"): (
        "remove exact and near-duplicate problems and those overlapping HumanEval prompts",
        "rlcoder.cli.data:cmd_data_dedup",
        _add_data_dedup_args,
    ),
    ("data", "label"): (
        "label problems with a model's pass rate and KodCode's difficulty (n samples each, resumable)",
        "rlcoder.cli.rl_data:cmd_data_label",
        _late("rlcoder.cli.rl_data", "add_label_args"),
    ),
    ("data", "synthesize"): (
        "KodCode-style synthesis: the model writes a solution and pytest file per question, kept if verified",
        "rlcoder.cli.rl_data:cmd_data_synthesize",
        _late("rlcoder.cli.rl_data", "add_synthesize_args"),
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
        cmd.add_argument(
            "--verbose", "-v", action="store_true", help="show every library warning and a traceback on error"
        )
        cmd.set_defaults(_target=target)
    return parser


def _resolve(target: str) -> Handler:
    module, func = target.split(":")
    handler: Handler = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    quiet_console(verbose)
    try:
        return _resolve(args._target)(args)
    except ConfigError as exc:
        print(f"rlcoder: config error: {exc}", file=sys.stderr)
        return 2
    except ProblemLoadError as exc:  # a data source found bad after the checks (a row past the first ones)
        print(f"rlcoder: data error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlcoder: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one line, the traceback only when asked for
        if verbose:
            raise
        print(f"rlcoder: error: {one_line_error(exc)} (--verbose shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
