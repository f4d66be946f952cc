"""`rlcoder tiny-model`: build the tiny offline model and tokenizer."""

from __future__ import annotations

import argparse


def add_tiny_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from rlcoder.run.tiny_model import build_tiny_model, fingerprint

    out = build_tiny_model(args.out, seed=args.seed)
    print(f"tiny model written to {out} (fingerprint {fingerprint(out)[:16]})")
    return 0
