"""Offline reward replay: re-score stored completions (no model, no GPU) into a replay file beside the
input, resumable, and diff the new verdicts against the recorded ones (what a reward change moved).

Two verdicts are the same when status, passed and total agree; timings, output and detail may differ
between runs of the same program and are not compared.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.data.verification import SyncScorer
from rlcoder.eval.stored_runs import GroupFromInput, ReadLog, read_stored
from rlcoder.records import (
    Problem,
    RewardMode,
    ScoredGroup,
    Verdict,
    reward_from_verdict,
    to_json,
)
from rlcoder.run_dir import replay_folder

REPLAY_NAME = re.compile(r"^(?P<stem>.+)\.replay(?:-(?P<n>\d+))?\.jsonl$")
EXAMPLE_CHARS = 400  # completion text kept per diff example


# ---------------------------------------------------------------------------------------------
# Where replays go: beside the input, never over it


def replay_base(target: Path) -> tuple[Path, str]:
    """(folder, stem) of the input's replay files: <run dir>/replay[-N].jsonl for a run dir,
    <file stem>.replay[-N].jsonl beside a file (a step file's: in <stage>/replays/, not in steps/)."""
    if target.is_dir():
        return target, "run"
    return replay_folder(target), target.name.rsplit(".", 1)[0]


def existing_replays(target: Path) -> list[Path]:
    """The input's replay files, oldest first."""
    folder, stem = replay_base(target)
    found = []
    for p in folder.glob(f"{stem}.replay*.jsonl"):
        m = REPLAY_NAME.match(p.name)
        if m and m["stem"] == stem:
            found.append((int(m["n"] or 1), p))
    return [p for _, p in sorted(found)]


def next_replay_path(target: Path) -> Path:
    folder, stem = replay_base(target)
    n = len(existing_replays(target)) + 1
    while True:
        path = folder / (f"{stem}.replay.jsonl" if n == 1 else f"{stem}.replay-{n}.jsonl")
        if not path.exists():
            return path
        n += 1


def reward_fingerprint() -> str:
    """sha256 over the reward package's source: 'the same reward version' for a local replay."""
    h = hashlib.sha256()
    folder = resources.files("reward")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            h.update(entry.name.encode())
            h.update(entry.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Re-scoring


@dataclass
class ReplayStats:
    out: Path
    groups: int = 0  # replayed in this call
    completions: int = 0
    resumed_groups: int = 0  # already in the replay file, skipped
    missing: Counter[str] = field(default_factory=Counter)  # problem_id -> completions left unscored
    seconds: float = 0.0


def done_keys(out: Path) -> set[str]:
    """Groups a replay file already holds. A torn last line (a kill mid-write) is cut off first."""
    if not out.is_file():
        return set()
    data = out.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with out.open("r+b") as f:
            f.truncate(end)
    return {g.key for g in read_stored(out, ReadLog())}


def replay_groups(
    stored: Iterable[GroupFromInput],
    problems: Mapping[str, Problem],
    score: SyncScorer,
    cfg: RunConfig,
    out: Path,
    *,
    skip: set[str] | frozenset[str] = frozenset(),
    chunk_completions: int = 256,
    progress: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Score every stored group whose problem is known and whose key is not in `skip`, in input order,
    appending one ScoredGroup line per group to `out` after each chunk, in input order (so a killed
    replay resumes). `score` is called from a worker thread, two chunks at a time."""
    from rlcoder.data.verification import rollout_item

    mode = RewardMode(cfg.reward.mode)
    stats = ReplayStats(out)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(f: Any, chunk: list[ScoredGroup], verdicts: list[Verdict]) -> None:
        it = iter(verdicts)
        lines = []
        for g in chunk:
            new = [next(it) for _ in g.rollouts]
            rewards = [reward_from_verdict(v, mode) for v in new]
            lines.append(to_json(ScoredGroup(g.problem_id, g.rollouts, new, rewards, step=g.step)) + "\n")
        f.write("".join(lines))
        f.flush()
        stats.groups += len(chunk)
        stats.completions += len(verdicts)
        stats.seconds = time.perf_counter() - started
        if progress is not None:
            progress(stats)

    # Two chunks in flight: the service starts on the next chunk while this one's slowest items finish.
    pending: deque[tuple[list[ScoredGroup], concurrent.futures.Future[list[Verdict]]]] = deque()
    with concurrent.futures.ThreadPoolExecutor(2) as pool, out.open("a", encoding="utf-8") as f:
        for chunk in _chunks(stored, stats, problems, skip, chunk_completions):
            items = [rollout_item(problems[g.problem_id], r, cfg.reward) for g in chunk for r in g.rollouts]
            pending.append((chunk, pool.submit(score, items)))
            if len(pending) == 2:
                done, future = pending.popleft()
                write(f, done, future.result())
        while pending:
            done, future = pending.popleft()
            write(f, done, future.result())
    return stats


def _chunks(
    stored: Iterable[GroupFromInput],
    stats: ReplayStats,
    problems: Mapping[str, Problem],
    skip: set[str] | frozenset[str],
    size: int,
) -> Iterator[list[ScoredGroup]]:
    chunk: list[ScoredGroup] = []
    n = 0
    for s in stored:
        if s.key in skip:
            stats.resumed_groups += 1
            continue
        if s.group.problem_id not in problems:
            stats.missing[s.group.problem_id] += len(s.group.rollouts)
            continue
        chunk.append(s.group)
        n += len(s.group.rollouts)
        if n >= size:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------------------------
# Diff against the recorded verdicts (pure)


def verdict_signature(v: Verdict) -> tuple[str, int, int]:
    """What must agree for two verdicts to count as the same."""
    return (v.status.value, v.passed, v.total)


@dataclass
class Change:
    where: str
    rollout_id: str
    problem_id: str
    old: str  # "fail 2/5"
    new: str
    old_detail: str
    new_detail: str
    completion: str


@dataclass
class Tally:
    compared: int = 0
    changed: int = 0


@dataclass
class DiffReport:
    compared: int = 0
    changed: int = 0
    unrecorded: int = 0  # replayed completions the input had no verdict for
    not_replayed: int = 0  # recorded completions with no replayed verdict (missing problem, unfinished)
    transitions: dict[str, int] = field(default_factory=dict)  # "pass -> fail" -> completions
    per_problem: dict[str, Tally] = field(default_factory=dict)
    per_difficulty: dict[str, Tally] = field(default_factory=dict)
    examples: dict[str, list[Change]] = field(default_factory=dict)  # transition -> a few changes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _show(v: Verdict) -> str:
    return f"{v.status.value} {v.passed}/{v.total}"


def diff_groups(
    pairs: Iterable[tuple[GroupFromInput, ScoredGroup | None]],
    problems: Mapping[str, Problem],
    max_examples: int = 3,
) -> DiffReport:
    """Compare each recorded group with its replay (None: not replayed). A change is any verdict whose
    signature moved; transitions are named by status ("pass -> fail"; "fail -> fail" when only the
    passed/total counts moved)."""
    d = DiffReport()
    for stored, new in pairs:
        old = stored.group
        if new is None:
            d.not_replayed += len(old.verdicts)
            continue
        if not old.verdicts:
            d.unrecorded += len(new.verdicts)
            continue
        problem = problems.get(old.problem_id)
        difficulty = (problem.difficulty if problem else "") or "-"
        tallies = (
            d.per_problem.setdefault(old.problem_id, Tally()),
            d.per_difficulty.setdefault(difficulty, Tally()),
        )
        for r, a, b in zip(old.rollouts, old.verdicts, new.verdicts, strict=True):
            moved = verdict_signature(a) != verdict_signature(b)
            d.compared += 1
            d.changed += moved
            for t in tallies:
                t.compared += 1
                t.changed += moved
            if not moved:
                continue
            name = f"{a.status.value} -> {b.status.value}"
            d.transitions[name] = d.transitions.get(name, 0) + 1
            shown = d.examples.setdefault(name, [])
            if len(shown) < max_examples:
                text = r.completion_text
                text = text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "..."
                shown.append(
                    Change(
                        stored.where,
                        r.rollout_id,
                        old.problem_id,
                        _show(a),
                        _show(b),
                        a.detail,
                        b.detail,
                        text,
                    )
                )
    return d


def pair_with_replay(
    recorded: Iterable[GroupFromInput], replay_file: Path
) -> Iterator[tuple[GroupFromInput, ScoredGroup | None]]:
    """Each recorded group with its group from the replay file (matched by rollout ids)."""
    replayed = {s.key: s.group for s in read_stored(replay_file, ReadLog())}
    for s in recorded:
        yield s, replayed.get(s.key)


def format_diff(d: DiffReport) -> str:
    from rlcoder.console import format_table

    head = (
        f"diff against the recorded verdicts: {d.changed} of {d.compared} changed"
        f" ({d.unrecorded} had no recorded verdict, {d.not_replayed} not replayed)"
    )
    if not d.compared:
        return head
    parts = [head]
    if d.transitions:
        parts.append(
            format_table(sorted(d.transitions.items(), key=lambda kv: -kv[1]), ("transition", "completions"))
        )
    parts.append(
        format_table(
            [(k, t.compared, t.changed) for k, t in sorted(d.per_difficulty.items())],
            ("difficulty", "compared", "changed"),
        )
    )
    moved = sorted(
        ((k, t) for k, t in d.per_problem.items() if t.changed), key=lambda kv: (-kv[1].changed, kv[0])
    )
    if moved:
        parts.append(
            format_table([(k, t.compared, t.changed) for k, t in moved], ("problem", "compared", "changed"))
        )
    for name, changes in d.examples.items():
        lines = [f"examples of {name}:"]
        for c in changes:
            lines.append(f"  {c.rollout_id} ({c.problem_id}, {c.where}): {c.old} -> {c.new}")
            if c.new_detail:
                lines.append(f"    now: {c.new_detail[:160]}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def write_json(path: Path, payload: Any) -> None:
    from rlcoder.run_dir import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")
