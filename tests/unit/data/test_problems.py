"""Problem loading: KodCode-V1 columns from parquet/jsonl/arrow, row/column errors, the bundled set
and its split, HumanEval, difficulty labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from rlcoder.data.humaneval import load_humaneval
from rlcoder.data.problems import (
    EVAL_EVERY,
    ProblemLoadError,
    bundled_problems,
    difficulty_from_pass_rate,
    label_difficulty,
    load_problems,
    problem_to_row,
    row_to_problem,
)
from rlcoder.records import TestKind

REPO = Path(__file__).resolve().parents[3]


def kodcode_rows() -> list[dict]:
    """Rows shaped like KodCode-V1's, extra columns included (written here, not copied)."""
    rows = []
    for i, (name, body, difficulty, at3) in enumerate(
        [("double", "x * 2", "easy", 6), ("square", "x * x", "medium", 9), ("negate", "-x", "hard", -3)]
    ):
        rows.append(
            {
                "version": "v1.0",
                "style": "instruct" if i != 1 else "complete",
                "subset": "Prefill" if i != 1 else "Algorithm",
                "question_id": f"Prefill_{1000 + i}_I",
                "question": f"Write a function `{name}(x)` that returns {body}.",
                "solution": f"def {name}(x):\n    return {body}\n",
                "test": f"from solution import {name}\n\ndef test_one():\n    assert {name}(3) == {at3}\n",
                "test_info": [
                    {
                        "function_name": name,
                        "parameter_list": "(x)",
                        "function_declaration": f"def {name}(x):",
                        "docstring": None,
                    }
                ],
                "gpt_pass_sequence": [1, 1, 0],
                "gpt_pass_trial_num": 2,
                "gpt_difficulty": difficulty,
                "gpt_pass_percentage": 0.6,
                "trials": {"trial_gpt4o_0": {"file_source": "x", "solution_code": "y"}},
                "chosen_trial": "trial_gpt4o_0",
                "metadata": {"original_instruction": "n/a"},
                "benchmark_similarity": 0.4,
                "filter_reason": None,
            }
        )
    return rows


def write_parquet(rows: list[dict], path: Path) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_parquet_with_kodcode_columns_loads(tmp_path: Path) -> None:
    path = write_parquet(kodcode_rows(), tmp_path / "kodcode.parquet")
    problems = load_problems(str(path))
    assert [p.problem_id for p in problems] == ["Prefill_1000_I", "Prefill_1001_I", "Prefill_1002_I"]
    first = problems[0]
    assert first.entry_point == "double"
    assert first.test_info[0].function_declaration == "def double(x):"
    assert first.test_info[0].docstring == ""  # None in the row
    assert first.test_kind is TestKind.PYTEST
    assert (first.style, first.difficulty, first.subset) == ("instruct", "easy", "Prefill")
    assert problems[1].style == "complete"
    assert first.source == str(path)


def test_jsonl_arrow_and_parquet_dir_load_the_same_problems(tmp_path: Path) -> None:
    import datasets

    rows = kodcode_rows()
    from_jsonl = load_problems(str(write_jsonl(rows, tmp_path / "k.jsonl")))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "arrow"))
    from_arrow = load_problems(str(tmp_path / "arrow"))
    (tmp_path / "shards").mkdir()
    write_parquet(rows[:2], tmp_path / "shards" / "train-00000.parquet")
    write_parquet(rows[2:], tmp_path / "shards" / "train-00001.parquet")
    from_dir = load_problems(str(tmp_path / "shards"))
    for a, b, c in zip(from_jsonl, from_arrow, from_dir, strict=True):
        a.source = b.source = c.source = ""
        assert a == b == c


def test_limit_and_streaming(tmp_path: Path) -> None:
    path = str(write_parquet(kodcode_rows(), tmp_path / "k.parquet"))
    assert [p.problem_id for p in load_problems(path, limit=2)] == ["Prefill_1000_I", "Prefill_1001_I"]
    stream = load_problems(path, limit=2, streaming=True)
    assert not isinstance(stream, list)
    assert [p.entry_point for p in stream] == ["double", "square"]


def test_missing_column_names_row_and_column(tmp_path: Path) -> None:
    rows = kodcode_rows()
    for r in rows:
        del r["test"]
    path = write_parquet(rows, tmp_path / "no_test.parquet")
    with pytest.raises(ProblemLoadError, match=r"row 0 \(Prefill_1000_I\): column 'test' is missing"):
        load_problems(str(path))


def test_bad_row_in_the_middle_is_named(tmp_path: Path) -> None:
    rows = kodcode_rows()
    rows[2]["test_info"][0]["function_name"] = ""
    path = write_jsonl(rows, tmp_path / "bad.jsonl")
    with pytest.raises(ProblemLoadError, match=r"row 2 .*column 'test_info'.*function_name"):
        load_problems(str(path))
    # streaming yields the good rows, then fails at the bad one
    stream = load_problems(str(path), streaming=True)
    assert next(stream).problem_id == "Prefill_1000_I"
    assert next(stream).problem_id == "Prefill_1001_I"
    with pytest.raises(ProblemLoadError, match="row 2"):
        next(stream)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("question", "", "column 'question' must be a non-empty string"),
        ("solution", 3, "column 'solution' must be a non-empty string"),
        ("test_info", "double", "column 'test_info' must be a list"),
        ("test_info", [3], "column 'test_info' entry 0 must be an object"),
        ("style", "chat", "column 'style' must be one of instruct, complete"),
        ("gpt_difficulty", "trivial", "column 'gpt_difficulty' must be one of easy, medium, hard"),
        ("test_kind", "doctest", "column 'test_kind' must be one of"),
    ],
)
def test_malformed_columns(column: str, value: object, message: str) -> None:
    row = kodcode_rows()[0]
    row[column] = value
    with pytest.raises(ProblemLoadError, match=f"src: row 7 .*{message}"):
        row_to_problem(row, 7, "src")


def test_difficulty_falls_back_to_pass_percentage() -> None:
    row = kodcode_rows()[0]
    row["gpt_difficulty"] = None
    row["gpt_pass_percentage"] = 0.9
    assert row_to_problem(row, 0).difficulty == "easy"
    row["gpt_pass_percentage"] = 1.5
    with pytest.raises(ProblemLoadError, match="gpt_pass_percentage"):
        row_to_problem(row, 0)


def test_problem_to_row_round_trips() -> None:
    for p in [row_to_problem(r, i) for i, r in enumerate(kodcode_rows())] + load_humaneval(limit=3):
        p.source = ""
        assert row_to_problem(problem_to_row(p), 0) == p


def test_missing_paths_and_offline_hub_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProblemLoadError, match="no such file"):
        load_problems(str(tmp_path / "nope.parquet"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ProblemLoadError, match=r"unknown file type '\.csv'"):
        load_problems(str(tmp_path / "x.csv"))
    # A hub id with the hub unreachable: run in a child so the offline switches take effect at import.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "from rlcoder.data.problems import load_problems, ProblemLoadError\n"
        "try:\n    load_problems('KodCode/KodCode-V1', limit=1)\n"
        "except ProblemLoadError as exc:\n    print('ERR', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.startswith("ERR KodCode/KodCode-V1: cannot load from the Hugging Face hub"), out.stderr
    assert "local parquet/jsonl path" in out.stdout


def test_difficulty_labels_follow_kodcode_thresholds() -> None:
    assert [label_difficulty(k, 3) for k in range(4)] == ["hard", "medium", "medium", "easy"]
    assert [label_difficulty(k, 10) for k in (0, 3, 4, 6, 7, 10)] == [
        "hard",
        "hard",
        "medium",
        "medium",
        "easy",
        "easy",
    ]
    assert difficulty_from_pass_rate(Fraction(2, 3)) == "medium"
    assert difficulty_from_pass_rate(0.67) == "easy"
    with pytest.raises(ValueError):
        label_difficulty(4, 3)


# ---------------------------------------------------------------------------------------------
# The bundled set


def test_bundled_set_is_valid_and_split_deterministically() -> None:
    everything = load_problems("bundled")
    train, held_out = load_problems("bundled:train"), load_problems("bundled:eval")
    ids = [p.problem_id for p in everything]
    assert len(ids) == len(set(ids))
    train_ids, eval_ids = {p.problem_id for p in train}, {p.problem_id for p in held_out}
    assert not train_ids & eval_ids
    assert train_ids | eval_ids == set(ids)
    by_subset = Counter(p.subset for p in everything)
    eval_by_subset = Counter(p.subset for p in held_out)
    for subset, n in by_subset.items():
        assert eval_by_subset[subset] == n // EVAL_EVERY, subset
    assert [p.problem_id for p in bundled_problems("eval")] == [p.problem_id for p in held_out]
    for p in everything:
        assert len(p.test_info) == 1, p.problem_id
        assert p.style in ("instruct", "complete")
        assert p.difficulty in ("easy", "medium", "hard"), p.problem_id
        assert p.entry_point in p.solution, p.problem_id
        assert "solution" in p.test, p.problem_id
        assert p.source == "bundled"
    with pytest.raises(ProblemLoadError, match="split"):
        load_problems("bundled:dev")


def test_humaneval_maps_to_check_problems() -> None:
    problems = load_humaneval()
    assert len(problems) == 164
    assert load_problems("humaneval", limit=2)[1].problem_id == "HumanEval/1"
    for p in problems:
        assert p.test_kind is TestKind.CHECK
        assert p.style == "complete"
        assert "def check(candidate)" in p.test
        assert p.solution.startswith(p.question)
        assert p.test_info[0].function_declaration.startswith(f"def {p.entry_point}(")
