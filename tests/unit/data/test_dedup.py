"""Dedup finds planted exact and near duplicates; decontamination flags a planted HumanEval prompt."""

from __future__ import annotations

import dataclasses

from rlcoder.data.dedup import (
    CONTAMINATED,
    EXACT,
    NEAR,
    dedup_problems,
    find_contamination,
    find_near_duplicates,
    jaccard,
    normalize_text,
    shingles,
)
from rlcoder.data.humaneval import humaneval_prompts
from rlcoder.data.problems import load_problems
from rlcoder.records import FunctionInfo, Problem

QUESTIONS = [
    "Write a function `merge_intervals(intervals)` that merges all overlapping closed intervals given as "
    "pairs of integers and returns them sorted by their start point. Touching intervals such as [1, 2] and "
    "[2, 3] count as overlapping and become [1, 3].",
    "Write a function `caesar(text, shift)` that shifts every ASCII letter of text by shift places in the "
    "alphabet, wrapping around from z to a and keeping the case; other characters stay as they are.",
    "Write a function `top_words(text, k)` that returns the k most frequent lowercase words of text, most "
    "frequent first, ties broken alphabetically. Words are runs of letters; everything else separates them.",
    "Write a function `spiral(matrix)` that returns the elements of a rectangular matrix in clockwise "
    "spiral order starting from the top-left corner. An empty matrix gives an empty list.",
]


def problem(pid: str, question: str) -> Problem:
    return Problem(pid, question, "def f():\n    pass\n", "def test_x():\n    pass\n", [FunctionInfo("f")])


def base_set() -> list[Problem]:
    return [problem(f"p{i}", q) for i, q in enumerate(QUESTIONS)]


def test_normalization_folds_case_punctuation_and_whitespace() -> None:
    assert normalize_text("  Reverse   the WORDS!\n(please) ") == "reverse the words please"
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("Hi!", 3) == {"hi"}
    assert jaccard({"a", "b"}, {"b", "c"}) == 1 / 3


def test_clean_set_keeps_everything() -> None:
    problems = base_set()
    report = dedup_problems(problems, references=humaneval_prompts())
    assert report.removed == []
    assert report.kept == problems


def test_planted_exact_and_near_duplicates_are_found() -> None:
    problems = base_set()
    # same question, different case/spacing/punctuation: exact after normalization
    exact = problem("dup_exact", "  " + QUESTIONS[1].upper().replace(",", " ;").replace(" ", "   ") + "!!")
    # a light rewording of the top_words question (two words changed): near duplicate
    near = problem("dup_near", QUESTIONS[2].replace("most frequent first", "highest count first"))
    problems[2:2] = [exact]
    problems.append(near)
    report = dedup_problems(problems)
    removed = {r.problem_id: r for r in report.removed}
    assert set(removed) == {"dup_exact", "dup_near"}
    assert (removed["dup_exact"].reason, removed["dup_exact"].match) == (EXACT, "p1")
    assert (removed["dup_near"].reason, removed["dup_near"].match) == (NEAR, "p2")
    assert 0.7 <= removed["dup_near"].similarity < 1.0
    assert [p.problem_id for p in report.kept] == ["p0", "p1", "p2", "p3"]
    assert report.counts() == {EXACT: 1, NEAR: 1, CONTAMINATED: 0}


def test_near_threshold_is_respected() -> None:
    problems = base_set()
    # a different problem on the same topic shares words but not enough shingles
    other = problem(
        "other", QUESTIONS[3].replace("clockwise", "counter-clockwise").replace("top-left", "bottom-right")
    )
    found = find_near_duplicates([*problems, other], threshold=0.7)
    assert found == []
    found = find_near_duplicates([*problems, other], threshold=0.3)
    assert [r.problem_id for r in found] == ["other"]


def test_planted_humaneval_prompt_is_flagged() -> None:
    prompts = humaneval_prompts()
    assert len(prompts) == 164
    planted = problem("leak", "Complete this function:\n\n" + prompts["HumanEval/12"])
    # only the docstring's prose, re-wrapped and re-cased, still overlaps on 10-grams
    docstring = prompts["HumanEval/0"].split('"""')[1].split(">>>")[0]
    reworded = problem("leak_prose", "TASK: " + " ".join(docstring.upper().split()))
    problems = [*base_set(), planted, reworded]
    found = find_contamination(problems, prompts, n=10)
    assert {(r.problem_id, r.match) for r in found} == {
        ("leak", "HumanEval/12"),
        ("leak_prose", "HumanEval/0"),
    }
    report = dedup_problems(problems, references=prompts)
    assert report.counts()[CONTAMINATED] == 2
    assert len(report.kept) == 4


def test_bundled_set_has_no_duplicates_or_humaneval_overlap() -> None:
    problems = load_problems("bundled")
    report = dedup_problems(problems, references=humaneval_prompts())
    assert [dataclasses.asdict(r) for r in report.removed] == []
