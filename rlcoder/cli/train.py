"""`rlcoder train`: the whole run (the config's stages in order), resumable."""

from __future__ import annotations

import argparse

from rlcoder.cli.config import config_from_args


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # validated before any heavy import
    from rlcoder.run.job import claim_run_dir, run_train

    run_train(claim_run_dir(cfg, new_run=args.new_run))
    return 0
