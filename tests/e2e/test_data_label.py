"""`rlcoder data label` through the CLI with the tiny model: real fleet samples, real sandbox verdicts,
rows that `load_problems` reads back with their labels; an existing output is never overwritten and a
resumed run skips what is labelled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlcoder.data.problems import DIFFICULTIES, load_problems
from tests.helpers import REPO

pytestmark = pytest.mark.e2e

ARGS = ["rollout.engine=transformers", "reward.workers=1", "rollout.max_new_tokens=64", "ray.num_cpus=2"]


def _label(tiny_model_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rlcoder", "data", "label", "bundled:train", *ARGS]  # overrides after SOURCE
    cmd += ["--model", str(tiny_model_dir), "--n", "3", "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_data_label_writes_rows_that_load_back_with_labels(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "labelled.jsonl"
    proc = _label(tiny_model_dir, out, "--limit", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[label] 2/2 problems labelled" in proc.stderr
    problems = load_problems(str(out))
    assert [p.problem_id for p in problems] == [p.problem_id for p in load_problems("bundled:train", limit=2)]
    for p in problems:
        assert len(p.pass_sequence) == 3 and set(p.pass_sequence) <= {0, 1}
        assert p.pass_rate == sum(p.pass_sequence) / 3 and p.difficulty in DIFFICULTIES
    assert "easy" in proc.stdout and "mean pass rate" in proc.stdout

    before = out.read_text()
    again = _label(tiny_model_dir, out, "--limit", "2")
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    assert out.read_text() == before  # refused: nothing overwritten

    more = _label(tiny_model_dir, out, "--limit", "3", "--resume")
    assert more.returncode == 0, more.stderr[-3000:]
    assert out.read_text().startswith(before)  # appended, the first two kept as they were
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and len({r["question_id"] for r in rows}) == 3
    assert "[label] 1 problems x 3 samples" in more.stderr and "(2 already in" in more.stderr


def test_data_synthesize_with_the_tiny_model_end_to_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The tiny model memorized nothing of this prompt: its yield is ~0, but every question comes back
    verified or rejected with its attempts' verdicts, and the outputs are KodCode rows / reasons."""
    out = tmp_path / "synth.jsonl"
    cmd = [sys.executable, "-m", "rlcoder", "data", "synthesize", "bundled:train", *ARGS]
    cmd += ["--model", str(tiny_model_dir), "--out", str(out), "--attempts", "2", "--limit", "2"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[synthesize] 2/2 questions" in proc.stderr and "verified" in proc.stdout
    kept = load_problems(str(out)) if out.read_text().strip() else []
    rejected = [json.loads(line) for line in out.with_name("synth.rejected.jsonl").read_text().splitlines()]
    assert len(kept) + len(rejected) == 2
    assert all(1 <= len(r["attempts"]) <= 2 and r["attempts"][0]["status"] for r in rejected)
