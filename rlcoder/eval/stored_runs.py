"""Reading stored rollouts for replay, reports and export: a run directory's step files, one step or
replay file (ScoredGroup JSON lines), or a dataset of completions (jsonl or parquet rows). Corrupt or
truncated lines are reported with their line number, counted and skipped, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, RunConfig, load_config
from rlcoder.console import Log, log_stderr
from rlcoder.records import (
    Problem,
    RecordError,
    Rollout,
    ScoredGroup,
    Verdict,
    VerdictStatus,
    from_dict,
    reward_from_verdict,
)
from rlcoder.run_dir import RESOLVED_CONFIG, RL_STAGES, STEP_GLOB, RunDir, step_files

_ID_COLUMNS = ("problem_id", "question_id", "task_id")
_TEXT_COLUMNS = ("completion_text", "completion")
MAX_REPORTED = 20  # corrupt lines printed one per line; the rest are only counted


@dataclass
class BadLine:
    where: str  # "path:lineno" (jsonl) or "path:row N" (parquet)
    reason: str


@dataclass
class GroupFromInput:
    """A ScoredGroup read from a stored input, with where in the input it came from. `group.verdicts`
    is empty when the input recorded none (a plain dataset of completions): it is then scored, but not
    compared."""

    group: ScoredGroup
    where: str

    @property
    def key(self) -> str:
        """Identifies the group across reads of the same input (resume, diff)."""
        return "|".join(r.rollout_id for r in self.group.rollouts)


@dataclass
class ReadLog:
    """What reading skipped, printed as it goes (to stderr) and counted."""

    bad: list[BadLine] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def skip(self, where: str, reason: str) -> None:
        self.bad.append(BadLine(where, reason))
        if self.echo is not None and len(self.bad) <= MAX_REPORTED:
            self.echo(f"{where}: skipped: {reason}")
        elif self.echo is not None and len(self.bad) == MAX_REPORTED + 1:
            self.echo("... further corrupt lines are counted, not printed")


# ---------------------------------------------------------------------------------------------
# Inputs


def input_files(target: Path) -> list[Path]:
    """The files a replay input stands for: every RL stage's step files of a run dir, in step order."""
    if target.is_dir():
        files = [p for stage in RL_STAGES for p in step_files(RunDir(target).stage(stage).steps)]
        if not files:
            raise ConfigError(f"{target}: no {'|'.join(RL_STAGES)}/steps/{STEP_GLOB} files (not a run dir?)")
        return files
    if not target.is_file():
        raise ConfigError(f"{target}: no such file or directory")
    if target.suffix not in (".jsonl", ".json", ".parquet"):
        raise ConfigError(f"{target}: expected a run dir, a .jsonl or a .parquet file")
    return [target]


def read_stored(target: Path, log: ReadLog) -> Iterator[GroupFromInput]:
    """Every group of the input, in order; corrupt records go to `log` and are skipped."""
    for path in input_files(target):
        log.files.append(path)
        rows = _parquet_rows(path, log) if path.suffix == ".parquet" else _json_rows(path, log)
        yield from _groups(rows, path, log)


def _json_rows(path: Path, log: ReadLog) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                torn = "" if raw.endswith(b"\n") else ", truncated"
                log.skip(where, f"not JSON ({_first_line(exc)}{torn})")
                continue
            if not isinstance(row, dict):
                log.skip(where, f"expected a JSON object, got {type(row).__name__}")
                continue
            yield where, row


def _parquet_rows(path: Path, log: ReadLog) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        log.skip(str(path), f"unreadable parquet: {_first_line(exc)}")
        return
    index = 0
    for group in range(parquet.num_row_groups):
        try:
            rows = parquet.read_row_group(group).to_pylist()
        except Exception as exc:
            log.skip(f"{path}:row group {group}", f"unreadable: {_first_line(exc)}")
            index += parquet.metadata.row_group(group).num_rows
            continue
        for row in rows:
            yield f"{path}:row {index}", row
            index += 1


def _groups(rows: Iterable[tuple[str, dict[str, Any]]], path: Path, log: ReadLog) -> Iterator[GroupFromInput]:
    """ScoredGroup rows as they are; flat completion rows gathered into groups (a new group when
    the problem or the step changes, or a row says sample_index 0)."""
    pending: list[tuple[str, Rollout, Verdict | None]] = []
    for where, row in rows:
        if "rollouts" in row:
            yield from _flush(pending)
            pending = []
            try:
                yield GroupFromInput(_checked_group(from_dict(ScoredGroup, row)), where)
            except RecordError as exc:
                log.skip(where, str(exc))
            continue
        try:
            rollout, verdict = completion_row(row, default_id=f"{path.stem}:{where.rsplit(':', 1)[-1]}")
        except RecordError as exc:
            log.skip(where, str(exc))
            continue
        if pending and (
            pending[-1][1].problem_id != rollout.problem_id
            or pending[-1][1].step != rollout.step
            or ("sample_index" in row and rollout.sample_index == 0)
        ):
            yield from _flush(pending)
            pending = []
        pending.append((where, rollout, verdict))
    yield from _flush(pending)


def _checked_group(g: ScoredGroup) -> ScoredGroup:
    if g.verdicts and len(g.verdicts) != len(g.rollouts):
        raise RecordError(f"ScoredGroup: {len(g.rollouts)} rollouts but {len(g.verdicts)} verdicts")
    if not g.rollouts:
        raise RecordError("ScoredGroup: no rollouts")
    return g


def _flush(pending: list[tuple[str, Rollout, Verdict | None]]) -> Iterator[GroupFromInput]:
    if not pending:
        return
    rollouts = [r for _, r, _ in pending]
    verdicts = [v for _, _, v in pending if v is not None]
    if len(verdicts) < len(rollouts):  # not every row recorded a verdict: score, do not compare
        verdicts = []
    rewards = [reward_from_verdict(v) for v in verdicts]
    group = ScoredGroup(rollouts[0].problem_id, rollouts, verdicts, rewards, step=rollouts[0].step)
    yield GroupFromInput(group, pending[0][0])


def completion_row(row: Mapping[str, Any], default_id: str) -> tuple[Rollout, Verdict | None]:
    """One row of a completions dataset: a problem id (problem_id, question_id or task_id), the
    completion (completion_text or completion), and optionally rollout_id, sample_index, step and a
    recorded verdict (status, passed, total)."""
    pid = next((row[c] for c in _ID_COLUMNS if isinstance(row.get(c), str) and row[c]), None)
    text = next((row[c] for c in _TEXT_COLUMNS if isinstance(row.get(c), str)), None)
    if pid is None:
        raise RecordError(f"completion row: needs one of {', '.join(_ID_COLUMNS)}")
    if text is None:
        raise RecordError(f"completion row: needs a string column {' or '.join(_TEXT_COLUMNS)}")
    step, index = row.get("step", 0), row.get("sample_index", 0)
    if not isinstance(step, int) or not isinstance(index, int):
        raise RecordError("completion row: step and sample_index must be integers")
    rollout = Rollout(
        rollout_id=str(row.get("rollout_id") or default_id),
        problem_id=pid,
        sample_index=index,
        prompt=str(row.get("prompt") or ""),
        prompt_token_ids=[],
        completion_token_ids=[],
        completion_logprobs=[],
        completion_text=text,
        finish_reason=str(row.get("finish_reason") or "stop"),
        policy_version=int(row.get("policy_version") or 0),
        step=step,
    )
    status = row.get("status")
    if status is None:
        return rollout, None
    try:
        verdict = Verdict(VerdictStatus(status), int(row.get("passed") or 0), int(row.get("total") or 0))
    except (ValueError, TypeError):
        raise RecordError(f"completion row: status {status!r} is not a verdict status") from None
    return rollout, verdict


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# The run config and the problems a stored input was scored against


def run_config_for(target: Path, config: str | None, overrides: list[str]) -> tuple[RunConfig, Path | None]:
    """--config if given, else the config.resolved.yaml of the run the input lives in (the input
    itself or a parent folder), else the defaults; overrides apply on top."""
    if config:
        return load_config(config, overrides), Path(config)
    for folder in [target, *target.resolve().parents]:
        resolved = folder / RESOLVED_CONFIG
        if resolved.is_file():
            return load_config(resolved, overrides), resolved
    return load_config(None, overrides), None


def problem_sources(cfg: RunConfig, explicit: list[str] | None) -> list[str]:
    """Where to look the problems up, in order: --problems, else the run's train then eval source."""
    return list(explicit) if explicit else [cfg.data.train_source, cfg.data.eval_source]


def resolve_problems(sources: list[str], needed: set[str], log: Log = log_stderr) -> dict[str, Problem]:
    """The needed problems, from the first source that has each; sources after the first are read
    only while some are still missing. Unreadable sources are reported, not fatal, unless none loads."""
    from rlcoder.data.problems import ProblemLoadError, load_problems

    found: dict[str, Problem] = {}
    errors = []
    for source in sources:
        if needed <= found.keys():
            break
        try:
            problems = load_problems(source)
        except (ProblemLoadError, ValueError, RuntimeError) as exc:
            errors.append(f"{source}: {exc}")
            log(f"[problems] cannot load {source}: {exc}")
            continue
        hits = {p.problem_id: p for p in problems if p.problem_id in needed and p.problem_id not in found}
        found.update(hits)
        log(f"[problems] {source}: {len(hits)} of the {len(needed)} problems the input names")
    if errors and len(errors) == len(sources):
        raise ConfigError("no problem source could be loaded: " + "; ".join(errors))
    return found
