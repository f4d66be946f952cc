"""Summaries (pass rate per step, difficulty and subset, verdict histogram, pass@k against hand-computed
values), the HTML report, the SFT export read back by the SFT loader, and the report/export commands."""

from __future__ import annotations

import math

import pytest

from rlcoder.cli.main import main
from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems, load_problems
from rlcoder.eval.export import normalized_code, passing_solutions
from rlcoder.eval.report import html_report, parse_ks, summarize
from rlcoder.eval.synthetic_run import write_run
from rlcoder.records import Problem, Rollout, ScoredGroup, Verdict, VerdictStatus

S = VerdictStatus


def _rollout(pid: str, i: int, text: str = "", step: int = 1) -> Rollout:
    return Rollout(f"{step}-{pid}-{i}", pid, i, "", [], [], [], text, "stop", 0, step=step)


def _group(
    pid: str, statuses: list[VerdictStatus], step: int = 1, texts: list[str] | None = None
) -> ScoredGroup:
    texts = texts or [""] * len(statuses)
    rollouts = [_rollout(pid, i, t, step) for i, t in enumerate(texts)]
    return ScoredGroup(pid, rollouts, [Verdict(s) for s in statuses], [None] * len(statuses), step=step)


def _problem(pid: str, difficulty: str, subset: str) -> Problem:
    return Problem(pid, "q", "def f():\n    return 1\n", "test", difficulty=difficulty, subset=subset)


def test_summary_rates_histogram_and_pass_at_k_by_hand():
    problems = {"a": _problem("a", "easy", "s1"), "b": _problem("b", "hard", "s2")}
    groups = [
        _group("a", [S.PASS, S.FAIL, S.PASS, S.INFRA_ERROR], step=1),  # 2 of 3 scored pass
        _group("b", [S.FAIL, S.TIMEOUT, S.ERROR, S.NO_CODE], step=1),  # 0 of 4
        _group("a", [S.PASS, S.PASS, S.PASS, S.FAIL], step=2),  # 3 of 4
        _group("zz", [S.PASS, S.FAIL], step=2),  # problem unknown: difficulty and subset "-"
    ]
    s = summarize(groups, problems, ks=[1, 2, 4])
    assert s.completions == 14 and s.groups == 4
    assert s.verdicts == {
        "pass": 6, "fail": 4, "error": 1, "timeout": 1, "memory": 0, "no_code": 1,
        "infra_error": 1, "bad_test": 0,
    }  # fmt: skip
    assert (s.overall.passed, s.overall.scored) == (6, 13)
    assert (s.by_step[1].passed, s.by_step[1].scored) == (2, 7)
    assert (s.by_step[2].passed, s.by_step[2].scored) == (4, 6)
    assert (s.by_difficulty["easy"].passed, s.by_difficulty["easy"].scored) == (5, 7)
    assert s.by_difficulty["hard"].value == 0.0
    assert s.by_subset["-"].value == 0.5
    # pass@k per group (each step's group comes from another policy):
    # k=1: mean(2/3, 0, 3/4, 1/2); k=2: a1 n=3 c=2 -> 1, b 0, a2 n=4 c=3 -> 1, zz n=2 c=1 -> 1
    # k=4: only the groups with 4 scored samples: b 0, a2 1 - C(1,4)/C(4,4) = 1
    assert s.pass_at[1] == (pytest.approx((2 / 3 + 0 + 3 / 4 + 1 / 2) / 4), 4)
    assert s.pass_at[2] == (pytest.approx(3 / 4), 4)
    assert s.pass_at[4] == (pytest.approx(1 / 2), 2)
    by_problem = summarize(groups, problems, ks=[5], by="problem")
    # pooled per problem: a has n=7, c=5: pass@5 = 1 - C(2,5)/C(7,5) = 1; b n=4 < 5: left out
    assert by_problem.pass_at[5] == (1.0, 1)


def test_pass_at_k_matches_the_codex_formula_on_a_grid():
    from rlcoder.eval.pass_at_k import pass_at_k

    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_parse_ks():
    assert parse_ks("8, 1,2,2") == [1, 2, 8]
    for bad in ("", "0,1", "a"):
        with pytest.raises(ValueError):
            parse_ks(bad)


def test_html_report_has_charts_and_escapes():
    problems = {"a": _problem("a", "easy", "<s>")}
    s = summarize([_group("a", [S.PASS, S.FAIL], step=1), _group("a", [S.PASS, S.PASS], step=2)], problems)
    page = html_report("Run <x>", s, [("Diff", "a -> <b>")])
    assert page.count("<svg") == 5
    assert "Run &lt;x&gt;" in page and "a -&gt; &lt;b&gt;" in page and "&lt;s&gt;" in page
    assert "<polyline" in page  # the per-step line


def test_export_passing_solutions_dedup_and_ids():
    problem = bundled_problems("train")[0]
    ref = f"```python\n{problem.solution}\n```"
    reformatted = f"```python\n# same program, other layout\n{problem.solution.replace('    ', '  ')}\n```"
    g = _group(
        problem.problem_id, [S.PASS, S.PASS, S.FAIL, S.PASS], texts=[ref, reformatted, ref, ref + "\n"]
    )
    rows, stats = passing_solutions([g, _group("unknown", [S.PASS])], {problem.problem_id: problem})
    assert [r.problem_id for r in rows] == [
        problem.problem_id,
        f"{problem.problem_id}#2",
        f"{problem.problem_id}#3",
    ]
    assert (stats.passing, stats.exported, stats.no_problem) == (4, 3, 1)
    assert rows[0].solution.strip() == problem.solution.strip()
    assert rows[0].test == problem.test and rows[0].question == problem.question
    rows, stats = passing_solutions([g], {problem.problem_id: problem}, dedup=True)
    assert (stats.exported, stats.duplicates) == (1, 2)
    rows, stats = passing_solutions([g], {problem.problem_id: problem}, max_per_problem=2)
    assert (stats.exported, stats.over_limit) == (2, 1)


def test_normalized_code_ignores_layout_and_comments():
    assert normalized_code("def f( a ):\n  # hi\n  return a\n") == normalized_code("def f(a):\n    return a")
    assert normalized_code("def broken(:") == "def broken(:"


@pytest.fixture
def recorded_run(tmp_path):
    problems = bundled_problems("train")[::21][:4]
    cfg = load_config(None, [f"run_dir={tmp_path / 'run'}", "data.train_source=bundled:train"])
    groups = []
    for step in (1, 2):
        for p in problems:
            good = f"```python\n{p.solution}\n```"
            groups.append(
                _group(p.problem_id, [S.PASS, S.FAIL], step=step, texts=[good, "```python\nx = 1\n```"])
            )
    return write_run(tmp_path / "run", cfg, groups), problems


def test_export_command_writes_what_sft_reads(recorded_run, tmp_path, capsys):
    from rlcoder.learn.sft import load_stage

    root, problems = recorded_run
    out = tmp_path / "sft.jsonl"
    assert main(["export", str(root), "--out", str(out), "--dedup"]) == 0
    assert "exported 4 passing solutions of 4 problems" in capsys.readouterr().out
    loaded = load_stage(str(out), load_config(None, []))  # the loader `rlcoder sft` uses for a stage
    assert sorted(p.problem_id for p in loaded) == sorted(p.problem_id for p in problems)
    by_id = {p.problem_id: p for p in problems}
    for p in loaded:
        assert p.solution.strip() == by_id[p.problem_id].solution.strip()
        assert p.test == by_id[p.problem_id].test and p.difficulty == by_id[p.problem_id].difficulty
    assert len(list(load_problems(str(out)))) == 4


def test_report_command_prints_tables_and_writes_html(recorded_run, capsys):
    root, _ = recorded_run
    assert main(["report", str(root), "--k", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "16 completions in 8 groups: pass rate 50.0%" in out
    assert "pass@2" in out and "difficulty" in out
    assert (root / "run.report.html").read_text().count("<svg") == 5


def test_replay_of_unknown_problems_is_a_one_line_error(recorded_run, capsys):
    root, _ = recorded_run
    assert main(["replay", str(root), "--problems", "bundled:eval", "--in-process"]) == 2
    err = capsys.readouterr().err
    assert "MISSING 4 problem(s)" in err
    assert "rlcoder: config error: none of the input's 4 problems is in bundled:eval" in err


def test_report_of_a_run_has_curves_and_the_before_after_comparison(recorded_run, capsys):
    import json

    from rlcoder.run_dir import RunDir

    root, _ = recorded_run
    stage = RunDir(root).stage("grpo")
    for step, (loss, reward, entropy) in enumerate([(0.5, 0.2, 1.5), (0.25, 0.6, 1.25)], 1):
        stage.append_metrics({"step": step, "loss": loss, "reward": reward, "entropy": entropy})
    stage.eval_file("before").write_text(json.dumps({"pass_rate": 0.25, "solved": 1, "problems": 4}))
    stage.eval_file("after").write_text(json.dumps({"pass_rate": 0.75, "solved": 3, "problems": 4}))
    assert main(["report", str(root), "--k", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "before RL         4       1      25.0%" in out and "after RL          4       3      75.0%" in out
    page = (root / "run.report.html").read_text()
    assert page.count("<svg") == 5 + 4  # the before/after bars and three curves
    for title in ("grpo: loss per step", "grpo: mean reward per step", "grpo: entropy (nats/token) per step"):
        assert f"<title>{title}</title>" in page
    assert ">step</text>" in page and ">entropy (nats/token)</text>" in page  # labelled axes
    assert ">1.5</text>" in page and ">1.25</text>" in page  # the entropy axis runs over its own range
