"""The model-driven data commands, KodCode style: `rlcoder data label` (problems labelled by a model's
pass rate) and `rlcoder data synthesize` (verified question/solution/test triplets written by a model).
A progress line per chunk (stderr) and a summary table (stdout)."""

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


def add_synthesize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "questions",
        help="questions: a problem source (bundled, humaneval) or any jsonl/parquet with a question column",
    )
    p.add_argument(
        "--model", required=True, help="the model that writes solutions and tests (dir, hub id or 'tiny')"
    )
    p.add_argument(
        "--out", required=True, help="output .jsonl of verified KodCode rows (rejected: <out>.rejected.jsonl)"
    )
    p.add_argument(
        "--attempts", type=int, default=3, help="answers per question at most (failing ones are asked again)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue existing outputs (questions in them are skipped)"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    add_config_args(p)


def cmd_data_synthesize(args: argparse.Namespace) -> int:
    from rlcoder.config import ConfigError
    from rlcoder.data.problems import ProblemLoadError
    from rlcoder.run.synthesize import load_questions, rejected_path, synthesize_problems

    cfg = config_from_args(args)
    if args.attempts < 1:
        raise ConfigError(f"--attempts {args.attempts}: need at least one")
    try:
        questions = load_questions(args.questions, args.limit)
    except (ProblemLoadError, ValueError) as exc:
        raise ConfigError(f"data synthesize: {exc}") from None
    out = Path(args.out)
    verified, rejected, skipped = synthesize_problems(
        cfg, args.model, questions, out, attempts=args.attempts, resume=args.resume
    )
    print(f"synthesize {args.questions} with {args.model}: up to {args.attempts} attempts per question")
    print(
        format_table(
            [("verified", verified), ("rejected", rejected), ("already done", skipped)], ("", "questions")
        )
    )
    print(f"wrote {out} and {rejected_path(out)}")
    return 0
