"""`rlcoder train`: the whole run (the config's stages in order), resumable."""

from __future__ import annotations

import argparse

from rlcoder.cli.config import config_from_args


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # validated before any heavy import
    from rlcoder.run.job import run_train

    run_train(cfg)
    return 0
