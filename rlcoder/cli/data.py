"""`rlcoder data verify` and `rlcoder data dedup`: run the problem-set checks on a source and print
a progress bar (stderr) and a summary table (stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rlcoder.console import format_table
from rlcoder.data.problems import write_problems
from rlcoder.records import Problem, to_dict
from rlcoder.run_dir import refuse_existing

MAX_LISTED = 50  # removed/rejected problems printed one per line; the rest are counted


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        nargs="?",
        default="bundled",
        help="bundled[:train|:eval], humaneval, a .parquet/.jsonl/.json/arrow path, or a hub id "
        "(default: bundled)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")


def add_verify_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p)
    p.add_argument("--repeats", type=int, default=3, help="runs per reference solution (flaky tests fail)")
    p.add_argument("--workers", type=int, default=None, help="concurrent sandbox runs (default: cores)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per run")
    p.add_argument("--report", default=None, help="also write the report as JSON to this path")
    p.add_argument(
        "--out",
        default=None,
        help="write the kept problems, with their measured reference runtimes, as KodCode rows",
    )


def add_dedup_args(p: argparse.ArgumentParser) -> None:
    add_source_args(p)
    p.add_argument("--near-threshold", type=float, default=0.7, help="shingle Jaccard of near duplicates")
    p.add_argument("--ngram", type=int, default=10, help="word n-gram size for decontamination")
    p.add_argument("--no-decontaminate", action="store_true", help="skip the HumanEval n-gram check")
    p.add_argument("--out", default=None, help="write the kept problems as KodCode rows (.jsonl or .parquet)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _load(args: argparse.Namespace) -> list[Problem] | None:
    from rlcoder.data.problems import ProblemLoadError, load_problems

    try:
        return list(load_problems(args.source, limit=args.limit))
    except (ProblemLoadError, ValueError, RuntimeError) as exc:
        print(f"rlcoder: cannot load {args.source}: {exc}", file=sys.stderr)
        return None


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="problem", file=sys.stderr)


def cmd_data_verify(args: argparse.Namespace) -> int:
    from rlcoder.data.verification import verify_problems

    problems = _load(args)
    if problems is None:
        return 2
    if args.out and Path(args.out).exists():
        print(f"rlcoder: --out {args.out} exists; not overwritten", file=sys.stderr)
        return 2
    with _progress(len(problems), f"verify x{args.repeats}") as bar:
        report = verify_problems(
            problems, repeats=args.repeats, workers=args.workers, timeout_s=args.timeout, progress=bar.update
        )
    rejected = {r.problem_id for r in report.rejected}
    by_subset: dict[str, Counter[str]] = {}
    for p in problems:
        outcome = "rejected" if p.problem_id in rejected else "kept"
        by_subset.setdefault(p.subset or "-", Counter())[outcome] += 1
    rows = [(s, c["kept"] + c["rejected"], c["kept"], c["rejected"]) for s, c in sorted(by_subset.items())]
    rows.append(("total", report.total, len(report.kept), len(report.rejected)))
    print(f"verify {args.source}: {args.repeats} runs per reference solution, {report.duration_s:.1f} s")
    print(format_table(rows, ("subset", "problems", "kept", "rejected")))
    print("verdicts: " + ", ".join(f"{k}={v}" for k, v in sorted(report.status_counts().items())))
    for r in report.rejected[:MAX_LISTED]:
        print(f"REJECTED {r.problem_id}: {r.reason}")
    if len(report.rejected) > MAX_LISTED:
        print(f"... and {len(report.rejected) - MAX_LISTED} more (see --report)")
    if args.report:
        payload = {
            "source": args.source,
            "repeats": report.repeats,
            "kept": [p.problem_id for p in report.kept],
            "rejected": [
                {"problem_id": r.problem_id, "verdicts": to_dict(r.verdicts)} for r in report.rejected
            ],
            "duration_s": report.duration_s,
        }
        Path(args.report).write_text(json.dumps(payload, indent=1))
    if args.out:
        write_problems(report.kept, Path(args.out))  # reference_runtime_s for `reward.timeout_s: auto`
        print(f"wrote {len(report.kept)} problems to {args.out}")
    return 1 if report.rejected else 0


def cmd_data_dedup(args: argparse.Namespace) -> int:
    from rlcoder.data.dedup import CONTAMINATED, EXACT, NEAR, dedup_problems

    if args.out:  # refused before any work, not after it
        refuse_existing(Path(args.out), args.force)
    problems = _load(args)
    if problems is None:
        return 2
    references = None
    if not args.no_decontaminate:
        from rlcoder.data.humaneval import HumanEvalMissing, humaneval_prompts

        try:
            references = humaneval_prompts()
        except HumanEvalMissing as exc:
            print(f"rlcoder: {exc}", file=sys.stderr)
            return 2
    with _progress(len(problems), "near-dedup") as bar:
        report = dedup_problems(
            problems,
            near_threshold=args.near_threshold,
            references=references,
            ngram=args.ngram,
            progress=bar.update,
        )
        bar.update(bar.total - bar.n)  # exact duplicates never reach the near pass
    counts = report.counts()
    decontam = "skipped" if references is None else counts[CONTAMINATED]
    rows = [
        ("loaded", len(problems)),
        ("exact duplicates (normalized question)", counts[EXACT]),
        (f"near duplicates (Jaccard >= {args.near_threshold})", counts[NEAR]),
        (f"contaminated ({args.ngram}-gram overlap with HumanEval)", decontam),
        ("kept", len(report.kept)),
    ]
    print(f"dedup {args.source}")
    print(format_table(rows, ("", "problems")))
    for r in report.removed[:MAX_LISTED]:
        print(f"REMOVED {r.problem_id}: {r.reason} of {r.match} (similarity {r.similarity})")
    if len(report.removed) > MAX_LISTED:
        print(f"... and {len(report.removed) - MAX_LISTED} more (use --out to keep the rest)")
    if args.out:
        write_problems(report.kept, Path(args.out))
        print(f"wrote {len(report.kept)} problems to {args.out}")
    return 0
