"""Self-verification in the real reward sandbox: every bundled reference solution passes its own tests
three times in a row; broken references are rejected; HumanEval's canonical solutions pass its checks;
`rlcoder data verify` exits non-zero exactly when something is rejected."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from rlcoder.cli.main import main
from rlcoder.data.humaneval import load_humaneval
from rlcoder.data.problems import load_problems, problem_to_row
from rlcoder.data.verification import verify_problems
from rlcoder.records import VerdictStatus

pytestmark = pytest.mark.integration


def test_every_bundled_problem_passes_self_verification() -> None:
    problems = load_problems("bundled")
    assert len(problems) >= 150
    report = verify_problems(problems, repeats=3)
    failures = {r.problem_id: r.reason for r in report.rejected}
    assert failures == {}
    assert len(report.kept) == len(problems)
    assert report.status_counts() == {"pass": 3 * len(problems)}


def test_broken_references_are_rejected_with_their_verdicts() -> None:
    good = load_problems("bundled", limit=3)
    # the reference, then its name rebound to something that returns a fresh object: every assert fails
    rebound = f"{good[0].solution}\n{good[0].entry_point} = lambda *a, **k: object()\n"
    wrong = dataclasses.replace(good[0], problem_id="wrong", solution=rebound)
    none = dataclasses.replace(
        good[1], problem_id="none", solution=f"def {good[1].entry_point}(*a, **k):\n    return None\n"
    )
    syntax = dataclasses.replace(good[2], problem_id="syntax", solution="def broken(:\n")
    report = verify_problems([*good, wrong, none, syntax], repeats=2)
    assert [p.problem_id for p in report.kept] == [p.problem_id for p in good]
    rejected = {r.problem_id: r for r in report.rejected}
    assert set(rejected) == {"wrong", "none", "syntax"}
    for r in rejected.values():
        assert len(r.verdicts) == 2
        assert all(v.status in (VerdictStatus.FAIL, VerdictStatus.ERROR) for v in r.verdicts), r.reason
    assert rejected["syntax"].verdicts[0].status is VerdictStatus.ERROR


def test_humaneval_canonical_solutions_pass_their_checks() -> None:
    problems = load_humaneval()
    report = verify_problems(problems, repeats=1)
    assert {r.problem_id: r.reason for r in report.rejected} == {}
    assert len(report.kept) == 164


def test_data_verify_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "bundled:eval", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "subset" in out and "rejected" in out and "REJECTED" not in out
    n_eval = str(len(load_problems("bundled:eval")))
    total_line = next(line for line in out.splitlines() if line.startswith("total"))
    assert total_line.split()[1:] == [n_eval, n_eval, "0"]

    rows = [problem_to_row(p) for p in load_problems("bundled", limit=2)]
    rows[1]["solution"] = "def nothing():\n    pass\n"
    src = tmp_path / "two.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report_path, kept_path = tmp_path / "report.json", tmp_path / "kept.jsonl"
    assert main(["data", "verify", str(src), "--report", str(report_path), "--out", str(kept_path)]) == 1
    out = capsys.readouterr().out
    (kept,) = load_problems(str(kept_path))  # stored with its reference runtime, for timeout_s: auto
    assert kept.problem_id == rows[0]["question_id"] and 0 < kept.reference_runtime_s < 10
    assert main(["data", "verify", str(src), "--out", str(kept_path)]) == 2  # never overwritten
    assert f"REJECTED {rows[1]['question_id']}" in out
    saved = json.loads(report_path.read_text())
    assert saved["kept"] == [rows[0]["question_id"]]
    statuses = Counter(v["status"] for v in saved["rejected"][0]["verdicts"])
    assert sum(statuses.values()) == 3 and "pass" not in statuses
