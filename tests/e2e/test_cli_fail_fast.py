"""Bad input is refused before any work starts, as one line naming the field, file or line, with a
non-zero exit and no traceback (the CLI in a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from rlcoder.config import load_config
from rlcoder.data.problems import load_problems, problem_to_row
from rlcoder.run_dir import write_resolved
from tests.helpers.cli import rlcoder_cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


def _rlcoder(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return rlcoder_cli(*args, timeout=timeout)


def _one_line_refusal(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]


def _rows(n: int) -> list[str]:
    return [json.dumps(problem_to_row(p)) for p in load_problems("bundled:train", limit=n)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def _train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    # the laptop config: SFT first, so any check that came after SFT would take minutes, not seconds
    return _rlcoder("train", "--config", "configs/laptop.yaml", f"run_dir={run_dir}", *overrides)


def test_missing_train_source_is_refused_before_sft(run_dir: Path) -> None:
    t0 = time.monotonic()
    proc = _train(run_dir, "data.train_source=/nonexistent/train.jsonl")
    _one_line_refusal(proc, "data.train_source: /nonexistent/train.jsonl: no such file or directory")
    assert time.monotonic() - t0 < 60  # no SFT ran first
    assert not (run_dir / "config.resolved.yaml").exists()  # nothing written for a run that never started


def test_empty_jsonl_says_it_is_empty(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_refusal(_train(run_dir, f"data.train_source={empty}"), f"{empty} holds no problems")


def test_corrupt_line_is_named_by_its_number(tmp_path: Path, run_dir: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = _rows(3)
    bad.write_text("\n".join([good[0], good[1], good[2][:40], good[0]]) + "\n")
    proc = _train(run_dir, f"data.train_source={bad}")
    _one_line_refusal(proc, f"data.train_source: {bad}:3: not valid JSON")


def test_a_bad_sft_stage_is_named_by_its_index(tmp_path: Path, run_dir: Path) -> None:
    stage = tmp_path / "stage.jsonl"
    row = json.loads(_rows(1)[0])
    del row["test"]
    stage.write_text(json.dumps(row) + "\n")
    proc = _rlcoder("sft", f"run_dir={run_dir}", f"learner.sft.stages=[bundled:train, {stage}]")
    _one_line_refusal(proc, "learner.sft.stages[1]:")
    assert "column 'test' is missing" in proc.stderr


def test_unreachable_hub_model_answers_in_one_line_fast(run_dir: Path) -> None:
    t0 = time.monotonic()
    proc = _train(run_dir, "model.name_or_path=no-such-org/no-such-model")
    _one_line_refusal(proc, "model.name_or_path: no-such-org/no-such-model is not in the Hugging Face cache")
    assert time.monotonic() - t0 < 30


def test_eval_k_above_n_is_refused_before_sampling(run_dir: Path) -> None:
    t0 = time.monotonic()
    proc = _rlcoder("eval", "--k", "5", "--n", "2", f"run_dir={run_dir}")
    _one_line_refusal(proc, "--k: pass@5 needs at least 5 samples per problem, but --n")
    assert time.monotonic() - t0 < 30  # no Ray, no engine
    assert not run_dir.exists()


def test_reward_port_in_use_is_refused_before_anything_starts(run_dir: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = _train(run_dir, "stages=[grpo]", f"reward.port={port}")
    _one_line_refusal(proc, f"reward.port: 127.0.0.1:{port} is in use")


def test_a_changed_config_on_an_existing_run_says_what_differs(run_dir: Path) -> None:
    # a run dir started with learner.steps=10 (as `rlcoder train` leaves it), retried with 20
    write_resolved(load_config(ROOT / "configs/laptop.yaml", [f"run_dir={run_dir}"]), run_dir)
    before = (run_dir / "config.resolved.yaml").read_text()
    proc = _train(run_dir, "learner.steps=20", "data.limit=4")
    _one_line_refusal(proc, f"run_dir {run_dir} holds a run started with another config")
    assert "data.limit: 8 -> 4; learner.steps: 10 -> 20" in proc.stderr
    assert f"--new-run to start {run_dir.with_name('run-2')}" in proc.stderr
    assert (run_dir / "config.resolved.yaml").read_text() == before  # not rewritten


def test_reward_serve_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        proc = _rlcoder("reward", "serve", "--port", str(held.getsockname()[1]))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert (
        proc.stderr
        == "rlcoder: error: OSError: [Errno 98] Address already in use (--verbose shows the traceback)\n"
    )
