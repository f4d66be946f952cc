"""The reward service's command-line flags, shared by `python -m reward` and `rlcoder reward serve`
(kept free of heavy imports so the rlcoder CLI can build its parser cheaply)."""

from __future__ import annotations

import argparse


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8711, help="port (0 = any free port)")
    parser.add_argument("--workers", type=int, default=None, help="concurrent executions (default: cores)")
    parser.add_argument("--queue-limit", type=int, default=None, help="items waiting before 429")
    parser.add_argument("--preload", default="", help="packages to import ahead, a speed-up (e.g. numpy)")
    parser.add_argument(
        "--judge",
        choices=("isolated", "in_process"),
        default="isolated",
        help="isolated: tests run in a judge process apart from the program (default); in_process: the "
        "older harness in the program's process (for comparison)",
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process dies (launchers pass their pid, so a SIGKILLed run leaves no service)",
    )
