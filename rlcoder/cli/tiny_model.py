"""`rlcoder tiny-model`: build the tiny offline model and tokenizer."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlcoder.run_dir import refuse_existing


def add_tiny_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files")


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from rlcoder.run.tiny_model import build_tiny_model, fingerprint

    refuse_existing(Path(args.out), args.force)
    out = build_tiny_model(args.out, seed=args.seed)
    print(f"tiny model written to {out} (fingerprint {fingerprint(out)[:16]})")
    return 0
