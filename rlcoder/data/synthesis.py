"""KodCode's synthesis step with our own model (pure; the model and the sandbox are passed in): ask for a
solution and a pytest file per question, keep a triplet only when the solution passes its tests in the
sandbox AND a trivially wrong solution (every imported name returning None) fails them, so a model
cannot verify itself with empty or vacuous tests; retry failing questions up to `attempts` times."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rlcoder.data.verification import SyncScorer
from rlcoder.records import FunctionInfo, Problem, ScoreItem, VerdictStatus

INSTRUCTIONS = (
    "Solve the coding question below. Answer with exactly two fenced ```python blocks: first the "
    "solution (a self-contained module), then a pytest test file for it that imports what it tests with "
    "`from solution import ...` and checks correct behaviour, including edge cases, with plain asserts."
)
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def synthesis_message(question: str) -> str:
    """The user turn that asks for a (solution, test) pair: KodCode's prompt shape, our wording."""
    return f"{INSTRUCTIONS}\n\nQuestion:\n{question.strip()}\n"


def parse_answer(text: str) -> tuple[str, str] | str:
    """(solution, test) from an answer, or the reason it is not one."""
    blocks = [b.strip() + "\n" for b in _FENCE.findall(text) if b.strip()]
    if len(blocks) < 2:
        return f"expected two fenced python blocks, found {len(blocks)}"
    solution, test = blocks[0], blocks[1]
    for name, src in (("solution", solution), ("test", test)):
        try:
            ast.parse(src)
        except SyntaxError as exc:
            return f"the {name} does not parse: {exc.msg} (line {exc.lineno})"
    if not imported_names(test):
        return "the test imports nothing from `solution`"
    if not collected_tests(test):
        return "the test file defines no test_ function"
    return solution, test


def imported_names(test: str) -> list[str]:
    """Names the test takes with `from solution import ...` (in order, no duplicates)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(test)):
        if isinstance(node, ast.ImportFrom) and node.module == "solution":
            names += [a.name for a in node.names if a.name != "*" and a.name not in names]
    return names


def collected_tests(test: str) -> list[str]:
    tree = ast.parse(test)
    return [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


def trivial_solution(test: str) -> str:
    """A wrong solution that defines every name the test imports as a function returning None."""
    return "".join(f"def {name}(*args, **kwargs):\n    return None\n\n" for name in imported_names(test))


@dataclass
class Attempt:
    """One answer for a question and what the sandbox said of it."""

    status: str  # "pass" (kept) or why not: a verdict status, "vacuous_tests", "unparsable"
    detail: str = ""
    solution: str = ""
    test: str = ""


@dataclass
class Outcome:
    question_id: str
    question: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def verified(self) -> Attempt | None:
        return next((a for a in self.attempts if a.status == "pass"), None)

    def problem(self) -> Problem:
        """The verified triplet as a Problem (KodCode keeps the pass sequence over attempts)."""
        a = self.verified
        assert a is not None, "only verified outcomes become problems"
        seq = [int(x.status == "pass") for x in self.attempts]
        info = [FunctionInfo(name) for name in imported_names(a.test)]
        return Problem(
            self.question_id, self.question, a.solution, a.test, info,
            pass_rate=sum(seq) / len(seq), pass_sequence=seq, source="synthesized",
        )  # fmt: skip


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```\n"


def check_answers(answers: Sequence[str], scorer: SyncScorer, timeout_s: float = 10.0) -> list[Attempt]:
    """Each answer parsed and checked in the sandbox: its solution must pass its tests, the trivial
    solution must not (one scorer call for the whole batch)."""
    parsed = [parse_answer(a) for a in answers]
    items: list[ScoreItem] = []
    for p in parsed:
        if isinstance(p, tuple):
            solution, test = p
            items.append(ScoreItem(completion=fenced(solution), test=test, timeout_s=timeout_s))
            items.append(ScoreItem(completion=fenced(trivial_solution(test)), test=test, timeout_s=timeout_s))
    verdicts = iter(scorer(items)) if items else iter(())
    out = []
    for p in parsed:
        if isinstance(p, str):
            out.append(Attempt("unparsable", p))
            continue
        real, trivial = next(verdicts), next(verdicts)
        if real.status is not VerdictStatus.PASS:
            out.append(Attempt(real.status.value, real.detail, *p))
        elif trivial.status is VerdictStatus.PASS:
            out.append(Attempt("vacuous_tests", "a solution returning None passes these tests", *p))
        else:
            out.append(Attempt("pass", "", *p))
    return out


def synthesize(
    questions: Sequence[tuple[str, str]],
    generate: Callable[[list[tuple[str, str]]], list[str]],
    scorer: SyncScorer,
    attempts: int = 3,
    timeout_s: float = 10.0,
) -> list[Outcome]:
    """(question_id, question) pairs to outcomes: `generate` answers a batch of questions (one answer
    each); questions without a verified triplet are asked again, up to `attempts` answers in all."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    outcomes = {qid: Outcome(qid, q) for qid, q in questions}
    pending = list(questions)
    for _ in range(attempts):
        if not pending:
            break
        for (qid, _q), attempt in zip(
            pending, check_answers(generate(pending), scorer, timeout_s), strict=True
        ):
            outcomes[qid].attempts.append(attempt)
        pending = [(qid, q) for qid, q in pending if outcomes[qid].verified is None]
    return list(outcomes.values())
