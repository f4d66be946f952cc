"""`rlcoder sft`: the SFT stage alone, into <run_dir>/sft."""

from __future__ import annotations

import argparse

from rlcoder.cli.config import config_from_args


def cmd_sft(args: argparse.Namespace) -> int:
    from rlcoder.run.job import run_sft_stage

    print(run_sft_stage(config_from_args(args)))
    return 0
