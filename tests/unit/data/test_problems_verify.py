"""Self-verification bookkeeping (with a scripted scorer standing in for the sandbox, passed as the
`scorer` argument) and the `rlcoder data dedup` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlcoder.cli.main import main
from rlcoder.data.problems import load_problems, problem_to_row
from rlcoder.data.verification import completion_item, verify_problems
from rlcoder.records import FunctionInfo, Problem, ScoreItem, TestKind, Verdict, VerdictStatus
from tests.helpers.fakes import ScriptedScorer


def make(pid: str) -> Problem:
    return Problem(
        pid,
        f"q {pid}",
        f"def f_{pid}():\n    return 1\n",
        f"from solution import f_{pid}\n",
        [FunctionInfo(f"f_{pid}")],
    )


def scripted(script: dict[str, list[VerdictStatus] | VerdictStatus]) -> ScriptedScorer:
    """Verdicts by problem id: a list is consumed one per call (flaky tests), a status is constant."""

    def verdict(item: ScoreItem, i: int) -> Verdict:
        plan = script.get(item.item_id, VerdictStatus.PASS)
        status = plan.pop(0) if isinstance(plan, list) else plan
        return Verdict(status=status, detail=f"{status.value} detail", item_id=item.item_id)

    return ScriptedScorer(verdict)


def test_only_problems_passing_every_repeat_are_kept() -> None:
    problems = [make(f"p{i}") for i in range(5)]
    scorer = scripted(
        {
            "p1": [VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.PASS],  # flaky
            "p3": VerdictStatus.ERROR,
        }
    )
    done: list[int] = []
    report = verify_problems(problems, repeats=3, scorer=scorer, chunk_size=2, progress=done.append)
    assert [p.problem_id for p in report.kept] == ["p0", "p2", "p4"]
    assert [r.problem_id for r in report.rejected] == ["p1", "p3"]
    flaky = report.rejected[0]
    assert [v.status for v in flaky.verdicts] == [VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.PASS]
    assert flaky.reason.startswith("fail (2/3 passes)")
    assert report.rejected[1].reason.startswith("error (0/3 passes)")
    assert report.total == 5
    assert report.status_counts() == {"pass": 3 * 3 + 2, "fail": 1, "error": 3}
    assert sum(done) == 5 and len(done) == 3  # chunks of 2, 2, 1
    # every item carries the reference solution in a fence, the test, the entry point and the id
    item = scorer.batches[0][0]
    assert item.completion.startswith("```python\n") and problems[0].solution.strip() in item.completion
    assert (item.test, item.entry_point, item.item_id) == (problems[0].test, "f_p0", "p0")
    assert item.test_kind is TestKind.PYTEST
    assert item.prompt == ""  # instruct style: nothing to continue
    assert [len(c) for c in scorer.batches] == [6, 6, 3]


def test_scorer_returning_the_wrong_count_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="1 verdicts for 2 items"):
        verify_problems([make("a"), make("b")], repeats=1, scorer=lambda items: [Verdict(VerdictStatus.PASS)])
    with pytest.raises(ValueError, match="repeats"):
        verify_problems([make("a")], repeats=0, scorer=lambda items: [])


def test_data_dedup_cli_reports_and_writes_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems = load_problems("bundled", limit=6)
    rows = [problem_to_row(p) for p in problems]
    twin = dict(rows[2], question_id="twin", question=rows[2]["question"].upper() + "  ")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [*rows, twin]))
    out = tmp_path / "kept.jsonl"
    assert main(["data", "dedup", str(src), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exact duplicates (normalized question)" in text
    assert f"REMOVED twin: exact_duplicate of {problems[2].problem_id}" in text
    assert [p.problem_id for p in load_problems(str(out))] == [p.problem_id for p in problems]


def test_data_cli_load_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "dedup", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_complete_style_items_carry_the_question_as_prompt() -> None:
    he = load_problems("humaneval", limit=1)[0]
    item = completion_item(he, "    return False\n", item_id="r-1")
    assert (item.prompt, item.test_kind, item.entry_point, item.item_id) == (
        he.question,
        TestKind.CHECK,
        "has_close_elements",
        "r-1",
    )
