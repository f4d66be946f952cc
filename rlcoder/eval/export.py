"""Export for the next round: completions that passed become a rejection-sampling SFT dataset, as
KodCode rows (the format `rlcoder sft` reads as a `learner.sft.stages` source), the passing code in
`solution`; optionally deduplicated per problem (same program after normalizing layout and comments).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rlcoder.records import Problem, ScoredGroup, VerdictStatus


@dataclass
class ExportStats:
    passing: int = 0  # passing completions seen
    exported: int = 0
    duplicates: int = 0  # dropped by dedup
    over_limit: int = 0  # dropped by max_per_problem
    no_problem: int = 0  # passing, but the problem is unknown
    problems: set[str] = field(default_factory=set)


def normalized_code(code: str) -> str:
    """The program with layout and comments normalized (ast round trip); the text itself if it does
    not parse."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError):
        return code.strip()


def passing_solutions(
    groups: Iterable[ScoredGroup],
    problems: Mapping[str, Problem],
    *,
    dedup: bool = False,
    max_per_problem: int | None = None,
) -> tuple[list[Problem], ExportStats]:
    """One Problem per kept passing completion: the problem's question and tests, the completion's
    extracted code as the solution. The first solution of a problem keeps its id; later ones get
    `<id>#<n>`, so every row is unique and still names its problem."""
    from reward.extract import extract_code

    stats = ExportStats()
    kept: dict[str, list[str]] = {}  # problem_id -> normalized solutions kept, in order
    out: list[Problem] = []
    for g in groups:
        for r, v in zip(g.rollouts, g.verdicts, strict=True):
            if v.status is not VerdictStatus.PASS:
                continue
            stats.passing += 1
            problem = problems.get(g.problem_id)
            if problem is None:
                stats.no_problem += 1
                continue
            prompt = problem.question if problem.style == "complete" else ""
            code = extract_code(r.completion_text, prompt, problem.entry_point)
            if code is None:  # a pass always had code; a hand-edited file might not
                continue
            seen = kept.setdefault(g.problem_id, [])
            norm = normalized_code(code)
            if dedup and norm in seen:
                stats.duplicates += 1
                continue
            if max_per_problem is not None and len(seen) >= max_per_problem:
                stats.over_limit += 1
                continue
            seen.append(norm)
            ident = problem.problem_id if len(seen) == 1 else f"{problem.problem_id}#{len(seen)}"
            # the whole program is the answer: a `complete` problem's solution already holds its signature
            out.append(dataclasses.replace(problem, problem_id=ident, solution=code.rstrip() + "\n"))
            stats.exported += 1
            stats.problems.add(g.problem_id)
    return out, stats
