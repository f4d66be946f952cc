"""`rlcoder replay`, `rlcoder report` and `rlcoder export`: stored rollouts re-scored, summarized and
exported. No model and no GPU; the problems come from the run's resolved config or --problems.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, RunConfig
from rlcoder.console import log_stderr
from rlcoder.eval.stored_runs import (
    ReadLog,
    problem_sources,
    read_stored,
    resolve_problems,
    run_config_for,
)
from rlcoder.records import Problem
from rlcoder.run_dir import refuse_existing

MAX_MISSING_LISTED = 20


def add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", help="a run dir, a step/replay .jsonl, or a .jsonl/.parquet dataset of completions"
    )
    p.add_argument(
        "--problems",
        action="append",
        metavar="SOURCE",
        help="where the problems are (repeatable; default: the run's data.train_source, then eval_source)",
    )
    p.add_argument("--config", "-c", help="run config (default: the input's run config.resolved.yaml)")
    p.add_argument("--k", default="1,2,4,8,16", help="pass@k for these k (comma-separated)")
    p.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="dotted config overrides (right after INPUT)"
    )


def add_replay_args(p: argparse.ArgumentParser) -> None:
    add_input_args(p)
    p.add_argument("--reward-url", help="score through this reward service (default: start one on 127.0.0.1)")
    p.add_argument(
        "--in-process", action="store_true", help="score in this process's sandbox, no HTTP service"
    )
    p.add_argument("--out", help="replay file (default: beside the input, a new name, never overwriting)")
    p.add_argument(
        "--resume", action="store_true", help="continue the newest replay file of the input (or --out)"
    )
    p.add_argument("--fail-on-change", action="store_true", help="exit 1 when any verdict changed (CI guard)")
    p.add_argument("--examples", type=int, default=3, help="changed completions shown per transition")
    p.add_argument("--chunk", type=int, default=256, help="completions scored (and saved) per chunk")


def add_report_args(p: argparse.ArgumentParser) -> None:
    add_input_args(p)
    p.add_argument(
        "--html", help="write the HTML report here (default: <input>.report.html beside the input)"
    )


def add_export_args(p: argparse.ArgumentParser) -> None:
    add_input_args(p)
    p.add_argument("--out", required=True, help="the SFT dataset to write (.jsonl or .parquet KodCode rows)")
    p.add_argument(
        "--dedup", action="store_true", help="drop a problem's repeated solutions (same normalized code)"
    )
    p.add_argument("--max-per-problem", type=int, default=None, help="keep at most N solutions per problem")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


# ---------------------------------------------------------------------------------------------
# Shared set-up: config, a first pass over the input, the problems


class Input:
    """A stored input with its run config and problems, read once up front (corrupt lines reported)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from rlcoder.eval.report import parse_ks

        self.target = Path(args.input)
        try:
            self.ks = parse_ks(args.k)
        except ValueError as exc:
            raise ConfigError(f"--k: {exc}") from None
        self.cfg, cfg_path = run_config_for(self.target, args.config, args.overrides)
        self.log = ReadLog(echo=log_stderr)
        needed: dict[str, int] = {}
        self.groups = 0
        for s in read_stored(self.target, self.log):
            self.groups += 1
            needed[s.group.problem_id] = needed.get(s.group.problem_id, 0) + len(s.group.rollouts)
        self.completions = sum(needed.values())
        if not self.groups:
            raise ConfigError(f"{self.target}: no readable groups ({len(self.log.bad)} corrupt lines)")
        sources = problem_sources(self.cfg, args.problems)
        where = f"config {cfg_path}" if cfg_path and not args.problems else "--problems"
        log_stderr(
            f"[input] {self.target}: {len(self.log.files)} file(s), {self.groups} groups, "
            f"{self.completions} completions, {len(self.log.bad)} corrupt line(s) skipped; "
            f"problems from {', '.join(sources)} ({where if cfg_path or args.problems else 'defaults'})"
        )
        self.problems: dict[str, Problem] = resolve_problems(sources, set(needed))
        self.missing = {pid: n for pid, n in needed.items() if pid not in self.problems}
        if self.missing:
            listed = ", ".join(sorted(self.missing)[:MAX_MISSING_LISTED])
            more = (
                f" and {len(self.missing) - MAX_MISSING_LISTED} more"
                if len(self.missing) > MAX_MISSING_LISTED
                else ""
            )
            log_stderr(
                f"[problems] MISSING {len(self.missing)} problem(s), "
                f"{sum(self.missing.values())} completions left out (not in {', '.join(sources)}; "
                f"pass --problems SOURCE): {listed}{more}"
            )
        if len(self.missing) == len(needed):
            raise ConfigError(f"none of the input's {len(needed)} problems is in {', '.join(sources)}")

    def stored(self) -> Any:
        """A fresh pass over the input (corrupt lines were already reported by the first)."""
        return read_stored(self.target, ReadLog())

    def read_summary(self) -> dict[str, Any]:
        return {
            "input": str(self.target),
            "files": [str(p) for p in self.log.files],
            "groups": self.groups,
            "completions": self.completions,
            "corrupt_lines": len(self.log.bad),
            "corrupt": [{"where": b.where, "reason": b.reason} for b in self.log.bad],
            "missing_problems": self.missing,
        }


@contextmanager
def sync_scorer(cfg: RunConfig, in_process: bool) -> Iterator[Any]:
    """A blocking scorer: the in-process sandbox, or a RewardClient (a URL, or a service started here)."""
    if in_process:
        from reward import score

        workers = cfg.reward.workers
        yield lambda items: score(items, workers=workers)
        return
    from rlcoder.run.services import reward_scorer

    with reward_scorer(cfg) as client:
        try:
            yield client.score_sync
        finally:
            client.close()


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_replay(args: argparse.Namespace) -> int:
    from rlcoder.eval.replay import (
        diff_groups,
        done_keys,
        existing_replays,
        format_diff,
        next_replay_path,
        pair_with_replay,
        replay_groups,
        reward_fingerprint,
        write_json,
    )
    from rlcoder.eval.report import format_summary, html_report, summarize

    if args.reward_url:
        args.overrides = [*args.overrides, f"reward.url={args.reward_url}"]
    inp = Input(args)
    out = _replay_out(args, inp.target, existing_replays, next_replay_path)
    skip = done_keys(out) if args.resume else set()
    if out.resolve() in {p.resolve() for p in inp.log.files}:
        raise ConfigError(f"--out {out} is the input itself: a replay never overwrites its input")
    reward = inp.cfg.reward.url or (
        "in-process sandbox" if args.in_process else "reward service on 127.0.0.1"
    )
    meta = {
        **inp.read_summary(),
        "reward": reward,
        "reward_fingerprint": reward_fingerprint(),
        "timeout_s": inp.cfg.reward.timeout_s,
        "memory_mb": inp.cfg.reward.memory_mb,
    }
    write_json(out.with_suffix(".meta.json"), meta)
    log_stderr(
        f"[replay] {'resuming' if skip else 'writing'} {out} ({len(skip)} groups already there); "
        f"scoring with {reward}"
    )
    total = inp.completions - sum(inp.missing.values())

    def progress(stats: Any) -> None:
        rate = stats.completions / stats.seconds if stats.seconds else 0.0
        log_stderr(
            f"[replay] {stats.completions} of {total} completions re-scored ({rate:.0f}/s), "
            f"{stats.groups} groups"
        )

    with sync_scorer(inp.cfg, args.in_process) as score:
        stats = replay_groups(
            inp.stored(),
            inp.problems,
            score,
            inp.cfg,
            out,
            skip=skip,
            chunk_completions=args.chunk,
            progress=progress,
        )
    rate = stats.completions / stats.seconds if stats.seconds else 0.0
    print(f"replayed {stats.completions} completions in {stats.seconds:.1f}s ({rate:.0f}/s) into {out}")
    diff = diff_groups(pair_with_replay(inp.stored(), out), inp.problems, max_examples=args.examples)
    replayed = [s.group for s in read_stored(out, ReadLog())]
    summary = summarize(replayed, inp.problems, inp.ks)
    diff_text, summary_text = format_diff(diff), format_summary(summary)
    print(diff_text + "\n\n" + summary_text)
    write_json(out.with_suffix(".diff.json"), {**diff.as_dict(), "read": meta})
    html_path = out.with_suffix(".report.html")
    html_path.write_text(
        html_report(f"Replay of {inp.target}", summary, [("Diff", diff_text)]), encoding="utf-8"
    )
    print(f"wrote {out.with_suffix('.diff.json')} and {html_path}")
    if args.fail_on_change:
        return _fail_on_change(diff, len(inp.log.bad))
    return 0


def _fail_on_change(diff: Any, corrupt_lines: int) -> int:
    """The CI guard: 1 when a verdict changed, and also when part of the input was never compared (a
    corrupt or truncated line skipped, recorded verdicts not replayed): unchecked is not unchanged."""
    if diff.changed:
        print(f"rlcoder: {diff.changed} verdict(s) changed (--fail-on-change)", file=sys.stderr)
        return 1
    if corrupt_lines or diff.not_replayed:
        print(
            f"rlcoder: --fail-on-change: not everything was compared ({corrupt_lines} corrupt line(s) "
            f"skipped, {diff.not_replayed} recorded verdict(s) not replayed)",
            file=sys.stderr,
        )
        return 1
    return 0


def _replay_out(args: argparse.Namespace, target: Path, existing: Any, fresh: Any) -> Path:
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.resume:
            raise ConfigError(f"--out {out} exists: pass --resume to continue it, or another path")
        return out
    if args.resume:
        found = existing(target)
        if not found:
            raise ConfigError(f"--resume: no replay file of {target} to continue")
        return Path(found[-1])
    return Path(fresh(target))


def cmd_report(args: argparse.Namespace) -> int:
    from rlcoder.eval.report import format_summary, html_report, summarize

    inp = Input(args)
    summary = summarize((s.group for s in inp.stored()), inp.problems, inp.ks)
    print(format_summary(summary))
    folder, stem = (
        (inp.target, "run") if inp.target.is_dir() else (inp.target.parent, inp.target.name.rsplit(".", 1)[0])
    )
    path = Path(args.html) if args.html else folder / f"{stem}.report.html"
    charts, sections = _run_extras(inp.target) if inp.target.is_dir() else ([], [])
    for heading, text in sections:
        print(f"\n{heading}\n{text}")
    path.write_text(html_report(f"Report of {inp.target}", summary, sections, charts), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _run_extras(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """A run dir's training curves (loss, reward, entropy per step) and its before/after-RL comparison."""
    import json

    from rlcoder.eval.report import before_after, training_curves
    from rlcoder.run_dir import RL_STAGES, RunDir

    charts: list[str] = []
    sections: list[tuple[str, str]] = []
    for name in RL_STAGES:
        stage = RunDir(root).stage(name)
        charts += training_curves(name, stage.read_metrics())
        before, after = stage.eval_file("before"), stage.eval_file("after")
        if before.is_file() and after.is_file():
            chart, table = before_after(name, json.loads(before.read_text()), json.loads(after.read_text()))
            charts.insert(0, chart)
            sections.append((f"{name}: before and after RL (the train problems)", table))
    return charts, sections


def cmd_export(args: argparse.Namespace) -> int:
    from rlcoder.data.problems import write_problems
    from rlcoder.eval.export import passing_solutions

    out = Path(args.out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: write .jsonl or .parquet")
    refuse_existing(out, args.force)
    inp = Input(args)
    if out.resolve() in {p.resolve() for p in inp.log.files}:
        raise ConfigError(f"--out {out} is the input itself")
    rows, stats = passing_solutions(
        (s.group for s in inp.stored()), inp.problems, dedup=args.dedup, max_per_problem=args.max_per_problem
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_problems(rows, out)
    print(
        f"exported {stats.exported} passing solutions of {len(stats.problems)} problems to {out} "
        f"({stats.passing} passing completions; dropped: {stats.duplicates} duplicates, "
        f"{stats.over_limit} over --max-per-problem, {stats.no_problem} of unknown problems)"
    )
    print(f"use it as an SFT stage: learner.sft.stages=[{out}]")
    return 0
