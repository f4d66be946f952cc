"""KodCode-style synthesis with a scripted engine and the real sandbox: a good answer is kept, a wrong
solution and vacuous tests are rejected with the reason, and failing questions are asked again."""

from __future__ import annotations

import json

import pytest

from reward import score
from rlcoder.data.problems import load_problems
from rlcoder.data.synthesis import parse_answer, synthesize, trivial_solution
from rlcoder.run.synthesize import rejected_path, write_outcomes

pytestmark = pytest.mark.integration

SOLUTION = "def add(a, b):\n    return a + b\n"
TESTS = "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n    assert add(-1, 1) == 0\n"
EMPTY_TESTS = "from solution import add\n\ndef test_add():\n    add(2, 3)\n"  # asserts nothing: None passes
WRONG = "def add(a, b):\n    return a - b\n"


def answer(solution: str, test: str) -> str:
    return f"Here you go.\n```python\n{solution}```\nAnd the tests:\n```python\n{test}```\n"


def scripted(answers: dict[str, list[str]]):
    """One answer per question per call, in order; `asked` records each batch's question ids."""
    asked: list[list[str]] = []

    def generate(batch):
        asked.append([qid for qid, _ in batch])
        return [answers[qid].pop(0) for qid, _ in batch]

    return generate, asked


def sandbox(items):
    return score(items, workers=1)


def test_parse_answer_takes_two_blocks_importing_from_solution():
    assert parse_answer(answer(SOLUTION, TESTS)) == (SOLUTION, TESTS)
    assert "two fenced" in parse_answer("```python\nx = 1\n```")
    assert "imports nothing" in parse_answer(
        answer(SOLUTION, "import solution\ndef test_a():\n    assert True\n")
    )
    assert "no test_" in parse_answer(answer(SOLUTION, "from solution import add\n"))
    assert "does not parse" in parse_answer(answer("def add(:\n", TESTS))
    assert trivial_solution(TESTS) == "def add(*args, **kwargs):\n    return None\n\n"


def test_good_bad_and_vacuous_answers(tmp_path):
    generate, asked = scripted(
        {
            "good": [answer(SOLUTION, TESTS)],
            "retry": [answer(WRONG, TESTS), answer(SOLUTION, TESTS)],
            "empty": [answer(SOLUTION, EMPTY_TESTS)] * 2,
            "prose": ["I cannot do that."] * 2,
        }
    )
    questions = [(q, f"Write add for {q}.") for q in ("good", "retry", "empty", "prose")]
    outcomes = {o.question_id: o for o in synthesize(questions, generate, sandbox, attempts=2)}
    assert asked == [["good", "retry", "empty", "prose"], ["retry", "empty", "prose"]]
    assert [a.status for a in outcomes["good"].attempts] == ["pass"]
    assert [a.status for a in outcomes["retry"].attempts] == ["fail", "pass"]
    assert [a.status for a in outcomes["empty"].attempts] == ["vacuous_tests"] * 2
    assert [a.status for a in outcomes["prose"].attempts] == ["unparsable"] * 2
    retry = outcomes["retry"].problem()
    assert retry.pass_sequence == [0, 1] and retry.pass_rate == 0.5 and retry.entry_point == "add"

    out = tmp_path / "synth.jsonl"
    assert write_outcomes(out, list(outcomes.values())) == (2, 2)
    kept = load_problems(str(out))
    assert [p.problem_id for p in kept] == ["good", "retry"] and kept[1].solution == SOLUTION
    assert [json.loads(line)["synthesis_attempts"] for line in out.read_text().splitlines()] == [1, 2]
    rejected = [json.loads(line) for line in rejected_path(out).read_text().splitlines()]
    assert [r["question_id"] for r in rejected] == ["empty", "prose"]
    assert rejected[0]["attempts"][0]["detail"] == "a solution returning None passes these tests"


def test_attempts_must_be_positive():
    with pytest.raises(ValueError, match="attempts"):
        synthesize([("q", "x")], lambda b: [], sandbox, attempts=0)
