"""The run directory: resolved config, per-step rollouts and verdicts, metrics, checkpoints; and
what a resumed run needs to know (the last complete checkpoint) so no step is lost or repeated.

Layout (every name below is defined here, nowhere else):
    <run_dir>/config.resolved.yaml
    <run_dir>/summary.json                        the RL stage's before/after evaluation
    <run_dir>/sft/final/                          the SFT checkpoint
    <run_dir>/<stage>/eval_{before,after}.json[l] the RL stage's evaluations and their samples
    <run_dir>/<stage>/selection.json              problems kept/dropped by data.min/max_pass_rate
    <run_dir>/<stage>/steps/step_000001.jsonl     one ScoredGroup per line
    <run_dir>/<stage>/metrics.jsonl               one object per step
    <run_dir>/<stage>/checkpoints/checkpoint-N/   complete only when it holds COMPLETE
    <run_dir>/<stage>/final/                      the stage's output model (HF format)
    <run_dir>/<stage>/replays/                    `rlcoder replay` of one step file (not under steps/)
    <run_dir>/eval/<model>/<problems>/            `rlcoder eval` of one model on one problem set
    <run_dir>/<stage>/ray_train/                  Ray Train's state (learner.num_processes > 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, RunConfig, dump_config
from rlcoder.records import RecordError, ScoredGroup, from_json, to_json

COMPLETE = "COMPLETE"
RESOLVED_CONFIG = "config.resolved.yaml"
SUMMARY = "summary.json"
SFT_STAGE = "sft"
RL_STAGES = ("grpo", "ppo")  # stages whose steps/ hold ScoredGroups
STEP_GLOB = "step_*.jsonl"
STEP_NAME = re.compile(r"^step_(\d+)\.jsonl$")  # what STEP_GLOB matches, less replays and the like
REPLAYS = "replays"
EVAL = "eval"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def write_resolved(cfg: RunConfig, run_dir: str | Path | None = None) -> Path:
    """Write the resolved config into the run directory and return its path."""
    out = Path(run_dir or cfg.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / RESOLVED_CONFIG
    target.write_text(dump_config(cfg))
    return target


def config_changes(cfg: RunConfig, run_dir: str | Path | None = None, limit: int = 8) -> list[str]:
    """What differs between the config a run directory was started with (its config.resolved.yaml)
    and `cfg`, as "key: old -> new" lines (empty for a new run dir or the same config). Compared as
    plain YAML, so a run written by an older schema still compares."""
    import yaml

    path = Path(run_dir or cfg.run_dir) / RESOLVED_CONFIG
    if not path.is_file():
        return []
    old = _flat(yaml.safe_load(path.read_text()) or {})
    new = _flat(yaml.safe_load(dump_config(cfg)))
    missing = "(unset)"
    changed = [
        f"{k}: {old.get(k, missing)} -> {new.get(k, missing)}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k, missing) != new.get(k, missing) and k != "run_dir"
    ]
    return changed if len(changed) <= limit else [*changed[:limit], f"... and {len(changed) - limit} more"]


def _flat(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"learner": {"steps": 10}} -> {"learner.steps": 10}."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def next_run_dir(run_dir: str | Path) -> Path:
    """The first of <run_dir>-2, <run_dir>-3, ... that does not exist: a new run beside the old one."""
    base = Path(run_dir)
    n = 2
    while (candidate := base.with_name(f"{base.name}-{n}")).exists():
        n += 1
    return candidate


def refuse_existing(path: Path, force: bool, what: str = "--out") -> None:
    """Outputs are never overwritten silently: an existing file, or a folder with anything in it, is a
    ConfigError unless `force`."""
    taken = path.is_file() or (path.is_dir() and any(path.iterdir())) or path.is_symlink()
    if taken and not force:
        kind = "folder" if path.is_dir() else "file"
        raise ConfigError(f"{what} {path}: the {kind} exists; pass --force to overwrite it, or another path")


def claim_appendable(out: Path, resume: bool, *alongside: Path) -> set[str]:
    """An output that a resumable command appends JSON lines to (data label, data synthesize): a .jsonl
    that is continued only with `resume`, never overwritten. Returns the question ids already written
    to it and to the files written `alongside` it; a last line torn by a kill is removed first."""
    if out.suffix != ".jsonl":
        raise ConfigError(f"--out {out}: rows are appended as JSON lines; name a .jsonl file")
    paths = [out, *alongside]
    if any(p.exists() for p in paths) and not resume:
        raise ConfigError(f"--out {out} exists: pass --resume to continue it (nothing is overwritten)")
    return set().union(*(written_ids(p) for p in paths))


def written_ids(path: Path) -> set[str]:
    """The question ids of the JSON lines in `path` (none when it does not exist); a last line torn by
    a kill is removed so the file can be appended to."""
    if not path.is_file():
        return set()
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        atomic_write_text(path, text)
    ids = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        try:
            ids.add(json.loads(line)["question_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(
                f"{path}:{lineno}: not a row this command wrote; refusing to append to it"
            ) from None
    return ids


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows as JSON lines, synced to disk before returning (a kill loses at most a torn line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file and rename: readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StageDir:
    """One stage's part of the run directory (sft, grpo, ppo)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.steps = root / "steps"
        self.metrics = root / "metrics.jsonl"
        self.checkpoints = root / "checkpoints"
        self.final = root / "final"
        self.ray_train = root / "ray_train"  # Ray Train's own state of a multi-rank learner
        self.ranks = self.ray_train / "ranks.jsonl"  # one line per (re)start: each rank's pid

    # -- per-step records ---------------------------------------------------------------------

    def step_file(self, step: int) -> Path:
        return self.steps / f"step_{step:06d}.jsonl"

    def write_step(self, step: int, groups: Iterable[ScoredGroup]) -> Path:
        path = self.step_file(step)
        atomic_write_text(path, "".join(to_json(g) + "\n" for g in groups))
        return path

    def read_step(self, step: int) -> list[ScoredGroup]:
        return list(read_groups(self.step_file(step)))

    def recorded_steps(self) -> list[int]:
        if not self.steps.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.steps.glob(STEP_GLOB) if (m := STEP_NAME.match(p.name)))

    # -- metrics ------------------------------------------------------------------------------

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.metrics.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.is_file():
            return []
        rows = []
        for line in self.metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
        return rows

    # -- checkpoints and resume ----------------------------------------------------------------

    def checkpoint(self, step: int) -> Path:
        """Where the checkpoint after `step` optimizer steps goes (TRL names them the same way)."""
        return self.checkpoints / f"checkpoint-{step}"

    def mark_complete(self, checkpoint: Path) -> None:
        atomic_write_text(checkpoint / COMPLETE, "")

    def last_complete_checkpoint(self) -> Path | None:
        """The newest checkpoint that was fully written; partial ones (a kill or a full disk
        mid-save) are ignored."""
        best: tuple[int, Path] | None = None
        if self.checkpoints.is_dir():
            for p in self.checkpoints.iterdir():
                m = _CKPT.match(p.name)
                if m and (p / COMPLETE).is_file() and (best is None or int(m.group(1)) > best[0]):
                    best = (int(m.group(1)), p)
        return best[1] if best else None

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest `keep` complete checkpoints (incomplete ones are left to
        rewind_to: one may be being written)."""
        complete = sorted(
            (int(m.group(1)), p)
            for p in (self.checkpoints.iterdir() if self.checkpoints.is_dir() else [])
            if (m := _CKPT.match(p.name)) and (p / COMPLETE).is_file()
        )
        for _, p in complete[: max(len(complete) - keep, 0)]:
            shutil.rmtree(p, ignore_errors=True)

    def rewind_to(self, step: int) -> None:
        """Forget everything recorded after `step` (it will be redone): step files, metrics rows
        and incomplete or newer checkpoints."""
        for s in self.recorded_steps():
            if s > step:
                self.step_file(s).unlink()
        rows = [r for r in self.read_metrics() if int(r.get("step", 0)) <= step]
        if self.metrics.exists():
            atomic_write_text(self.metrics, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        if self.checkpoints.is_dir():
            for p in self.checkpoints.iterdir():
                m = _CKPT.match(p.name)
                if m and (int(m.group(1)) > step or not (p / COMPLETE).is_file()):
                    shutil.rmtree(p, ignore_errors=True)

    def resume_checkpoint(self) -> Path | None:
        """The checkpoint to resume from (None: start fresh), after discarding anything newer."""
        ckpt = self.last_complete_checkpoint()
        self.rewind_to(checkpoint_step(ckpt) if ckpt else 0)
        return ckpt

    def is_done(self) -> bool:
        return (self.final / COMPLETE).is_file()

    @property
    def selection_file(self) -> Path:
        """Which train problems pass-rate selection kept and dropped (data.min/max_pass_rate)."""
        return self.root / "selection.json"

    def eval_file(self, when: str) -> Path:
        """The RL stage's evaluation `when` ("before" or "after"); its samples sit beside it (.jsonl)."""
        return self.root / f"eval_{when}.json"


def step_files(steps: Path) -> list[Path]:
    """The step files of a steps/ folder in step order (nothing else that happens to lie there)."""
    return sorted(p for p in steps.glob(STEP_GLOB) if STEP_NAME.match(p.name))


def replay_folder(target: Path) -> Path:
    """Where replays of the stored file `target` go: beside it, except that a step file's replays go
    to <stage>/replays/, so steps/ holds step files only (report and resume read every file there)."""
    if target.parent.name == "steps" and STEP_NAME.match(target.name):
        return target.parent.parent / REPLAYS
    return target.parent


def _slug(text: str, keep: int = 48) -> str:
    flat = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "_"
    if len(flat) <= keep:
        return flat
    return f"{flat[-keep:].lstrip('_')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def eval_dir(run_dir: str | Path, model: str, problems: str) -> Path:
    """`rlcoder eval`'s default output: one folder per model and problem set, so a second model's eval
    never lands on the first's."""
    return Path(run_dir) / EVAL / _slug(model) / _slug(problems)


def checkpoint_step(path: Path) -> int:
    m = _CKPT.match(path.name)
    if not m:
        raise ValueError(f"{path} is not a checkpoint-N directory")
    return int(m.group(1))


def read_groups(path: Path) -> Iterator[ScoredGroup]:
    """ScoredGroups of a step file; a malformed line raises with its line number."""
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield from_json(ScoredGroup, line)
            except (json.JSONDecodeError, RecordError) as exc:
                raise RecordError(f"{path}:{lineno}: {exc}") from None


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, name: str) -> StageDir:
        return StageDir(self.root / name)

    @property
    def resolved_config(self) -> Path:
        return self.root / RESOLVED_CONFIG

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY
