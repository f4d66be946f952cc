"""Execution feedback for multi-turn episodes: the user turn that tells the model how its answer did on
the problem's public tests (status, the failing test's source, the assertion or exception with the
actual values, the output tail), truncated to a size. Pure.

Built only from the public-test verdict and the public test source, never from the whole test: the
hidden tests are not in the run that produced the verdict, so no part of them can reach the message.
"""

from __future__ import annotations

import ast
import json
import re

from rlcoder.records import UNSCORED, TestKind, Verdict, VerdictStatus

ASK = "Fix the code and answer again with the whole corrected solution in one ```python code block."
_TRUNCATED = "\n[...]"
_TEST_LINE = re.compile(r"\(test line (\d+)\)")
_CASE = re.compile(r"^case (\d+):")


def needs_feedback(verdict: Verdict) -> bool:
    """Whether an answer gets another turn: it did not pass, and the failure is the program's (an
    infra_error says nothing about the code)."""
    return verdict.status is not VerdictStatus.PASS and verdict.status not in UNSCORED


def format_feedback(verdict: Verdict, public_test: str, kind: TestKind, max_chars: int) -> str:
    """The feedback message for a public-test verdict, at most `max_chars` characters."""
    if max_chars < len(ASK) + 40:
        raise ValueError(f"feedback_max_chars must be at least {len(ASK) + 40}, got {max_chars}")
    budget = max_chars - len(ASK) - 2
    # filled in priority order (what went wrong, the failing test, the output), shown in reading order
    head = _clip(_headline(verdict) + (f"\nError: {verdict.detail}" if verdict.detail else ""), budget)
    room = budget - len(head) - 1
    shown = _failing_test(verdict.detail, public_test, kind, room)
    room -= len(shown) + 1 if shown else 0
    rest = _rest_of_output(verdict)
    label = "Output (last lines):\n"
    tail = label + _clip_tail(rest, room - len(label)) if rest and room - len(label) > 40 else ""
    first, _, error = head.partition("\n")
    body = "\n".join(part for part in (first, shown, error, tail) if part)
    return f"{body}\n\n{ASK}"


def _headline(v: Verdict) -> str:
    tally = f" ({v.passed} of {v.total} tests passed)" if v.total else ""
    return {
        VerdictStatus.FAIL: f"Your code failed the tests{tally}.",
        VerdictStatus.ERROR: f"Your code raised an error{tally}.",
        VerdictStatus.TIMEOUT: "Your code ran past the time limit.",
        VerdictStatus.MEMORY: "Your code ran past the memory limit.",
        VerdictStatus.NO_CODE: "Your answer has no Python code to run.",
    }.get(v.status, f"Your code did not pass the tests: {v.status.value}{tally}.")


def _failing_test(detail: str, public_test: str, kind: TestKind, room: int) -> str:
    """The source of the public test the detail names (a pytest function or class, a check() line, a
    stdio case's input) within `room` characters, or "" when it does not fit or cannot be found."""
    if kind is TestKind.STDIO:
        text = _stdio_case(detail, public_test, room - 40)
    elif kind is TestKind.CHECK:
        text = _check_line(detail, public_test)
    else:
        text = _pytest_source(detail, public_test, room - 40)
    return text if 0 < len(text) <= room else ""


def _check_line(detail: str, public_test: str) -> str:
    match = _TEST_LINE.search(detail)
    lines = public_test.splitlines()
    if match and 0 < int(match.group(1)) <= len(lines):
        return f"Failing check: `{lines[int(match.group(1)) - 1].strip()}`"
    return ""


def _pytest_source(detail: str, public_test: str, room: int) -> str:
    name = detail.partition(":")[0].split("::")[0].split("[")[0].strip()
    if not name.startswith(("test", "Test")):
        return ""
    try:
        tree = ast.parse(public_test)
    except SyntaxError:
        return ""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            start = min(
                [node.lineno, *(d.lineno for d in node.decorator_list)]
            )  # parametrize shows the cases
            source = "\n".join(public_test.splitlines()[start - 1 : node.end_lineno])
            return f"Failing test:\n```python\n{_clip(source, min(room, 800))}\n```"
    return ""


def _stdio_case(detail: str, public_test: str, room: int) -> str:
    match = _CASE.match(detail)
    try:
        cases = json.loads(public_test)
    except ValueError:
        return ""
    if not match or not isinstance(cases, list) or int(match.group(1)) >= len(cases):
        return ""
    case = cases[int(match.group(1))]
    given = case.get("input", "") if isinstance(case, dict) else ""
    return f"Input of the failing case:\n```\n{_clip(str(given), min(room, 400))}\n```"


def _rest_of_output(v: Verdict) -> str:
    """The verdict's output tail without the line the message already shows."""
    lines = [line for line in v.output_tail.splitlines() if line.strip() and line != v.detail]
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    """The head of `text` within `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(_TRUNCATED), 0)] + _TRUNCATED


def _clip_tail(text: str, limit: int) -> str:
    """The tail of `text` within `limit` characters (the end of an output is where a traceback is)."""
    if len(text) <= limit:
        return text
    return "[...]\n" + text[-(limit - 6) :]
