"""The checks before work starts: sources opened and their first rows parsed (errors name the field,
file and line), k <= n, and a run dir started with another config (what differs; --new-run)."""

from __future__ import annotations

import json

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.data.problems import load_problems, problem_to_row
from rlcoder.run.job import claim_run_dir
from rlcoder.run.preflight import check_ks, check_source, check_stage_source
from rlcoder.run_dir import RunDir, write_resolved


def _rows(n):
    return [json.dumps(problem_to_row(p)) for p in load_problems("bundled:train", limit=n)]


def test_a_source_is_opened_and_its_first_rows_parsed(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(_rows(3)) + "\n\n")
    assert check_source(str(good), "data.train_source") == 3
    assert check_source("bundled:eval", "data.eval_source") > 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "holds no problems"),
        ("\n\n", "holds no problems"),
        ("{ROW}\n[1, 2]\n", ":2: expected a JSON object, got list"),
        ("{ROW}\n{ROW}\n{TORN}", ":3: not valid JSON"),
        ('{"question_id": "x"}\n', "row 0 (x): column 'question' is missing"),
    ],
)
def test_bad_sources_name_the_field_file_and_line(tmp_path, content, needle):
    row = _rows(1)[0]
    path = tmp_path / "train.jsonl"
    path.write_text(content.replace("{ROW}", row).replace("{TORN}", row[:30]))
    with pytest.raises(ConfigError, match=r"^data\.train_source: ") as err:
        check_source(str(path), "data.train_source")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_conversation_stages_are_checked_too(tmp_path):
    convs = tmp_path / "convs.jsonl"
    convs.write_text(json.dumps({"messages": "not a list"}) + "\n")
    with pytest.raises(ConfigError, match=r"^learner.sft.stages\[2\]: conversations:"):
        check_stage_source(f"conversations:{convs}", 2)
    with pytest.raises(ConfigError, match=r"^learner.sft.stages\[0\]: .*no such file"):
        check_stage_source("conversations:feedback:/nonexistent.jsonl", 0)


def test_k_above_n_is_refused():
    check_ks([1, 2], 2)
    with pytest.raises(ConfigError, match=r"--k: pass@4,8 needs at least 8 samples per problem.* is 2"):
        check_ks([1, 4, 8], 2)


def test_a_run_dir_started_with_another_config(tmp_path):
    run = tmp_path / "run"
    first = load_config(None, [f"run_dir={run}"])
    assert claim_run_dir(first) is first  # a new run dir
    write_resolved(first, run)
    assert claim_run_dir(load_config(None, [f"run_dir={run}"])).run_dir == str(run)  # a resume
    changed = load_config(None, [f"run_dir={run}", "learner.steps=3"])
    with pytest.raises(ConfigError, match=r"learner.steps: 10 -> 3\); pass --new-run to start .*run-2"):
        claim_run_dir(changed)
    lines = []
    fresh = claim_run_dir(changed, new_run=True, log=lines.append)
    assert fresh.run_dir == str(tmp_path / "run-2") and fresh.learner.steps == 3
    assert "this run goes to" in lines[0]


def test_an_unfinished_run_may_train_longer_but_a_finished_one_may_not(tmp_path):
    run = tmp_path / "run"
    first = load_config(None, [f"run_dir={run}", "stages=[grpo]", "learner.steps=2"])
    write_resolved(first, run)
    longer = load_config(None, [f"run_dir={run}", "stages=[grpo]", "learner.steps=3"])
    lines: list[str] = []
    assert claim_run_dir(longer, log=lines.append) is longer and "learner.steps 2 -> 3" in lines[0]
    other = load_config(None, [f"run_dir={run}", "stages=[grpo]", "learner.steps=3", "learner.lr=0.5"])
    with pytest.raises(ConfigError, match="another config"):
        claim_run_dir(other)  # anything beyond the step count is another run
    RunDir(run).stage("grpo").mark_complete(RunDir(run).stage("grpo").final)
    with pytest.raises(ConfigError, match="a finished run"):
        claim_run_dir(longer)
