"""`rlcoder data label` (and the RL data commands after it): problems labelled by a model's pass rate,
KodCode style; a progress line per chunk (stderr) and a summary table (stdout)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlcoder.cli.config import add_config_args, config_from_args
from rlcoder.console import format_table


def add_label_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source", help="problems to label: bundled[:split], humaneval, a .parquet/.jsonl path or hub id"
    )
    p.add_argument(
        "--model", required=True, help="the model whose samples label the problems (dir, hub id or 'tiny')"
    )
    p.add_argument("--n", type=int, default=10, help="samples per problem (KodCode: 10)")
    p.add_argument(
        "--out",
        required=True,
        help="output .jsonl: KodCode rows with gpt_pass_sequence/percentage/difficulty",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an existing --out (problems in it are skipped)"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    add_config_args(p)


def cmd_data_label(args: argparse.Namespace) -> int:
    from rlcoder.config import ConfigError
    from rlcoder.data.problems import ProblemLoadError, load_problems
    from rlcoder.run.label import label_problems

    cfg = config_from_args(args)
    if args.n < 1:
        raise ConfigError(f"--n {args.n}: need at least one sample per problem")
    try:
        problems = load_problems(args.source, limit=args.limit)
    except (ProblemLoadError, ValueError) as exc:
        raise ConfigError(f"data label: {exc}") from None
    report = label_problems(cfg, args.model, problems, args.n, Path(args.out), resume=args.resume)
    counts = report.by_difficulty()
    rows = [(d, counts.get(d, 0)) for d in ("easy", "medium", "hard")]
    rows += [("no label (every sample an infra error)", len(report.unscored))]
    rows += [("prompt too long", len(report.too_long)), ("already labelled", report.skipped)]
    print(f"label {args.source} with {args.model}: {args.n} samples per problem")
    print(format_table(rows, ("", "problems")))
    rates = [p.pass_rate for p in report.labelled if p.pass_rate is not None]
    if rates:
        print(f"mean pass rate {sum(rates) / len(rates):.1%} over {len(rates)} problems; wrote {args.out}")
    return 0
