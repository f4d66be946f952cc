"""`rlcoder sft`: the SFT stage alone, into <run_dir>/sft."""

from __future__ import annotations

import argparse

from rlcoder.cli.config import config_from_args


def cmd_sft(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from rlcoder.run.job import claim_run_dir, run_sft_stage

    print(run_sft_stage(claim_run_dir(cfg, new_run=args.new_run)))
    return 0
