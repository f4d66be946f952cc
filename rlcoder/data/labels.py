"""KodCode-style labels and RL data selection (pure): a problem's pass sequence over a model's samples
becomes its pass rate and difficulty (KodCode's thresholds, `difficulty_from_pass_rate`), and RL data
is selected by that stored pass rate (KodCode-Light-RL, DeepCoder: neither always solved nor never)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from rlcoder.data.problems import difficulty_from_pass_rate
from rlcoder.records import Problem, Verdict, VerdictStatus, reward_from_verdict


def pass_sequence(verdicts: Sequence[Verdict]) -> list[int]:
    """1 per passing sample, 0 per other scored one; verdicts that give no reward (infra errors) are
    no evidence and are left out."""
    return [int(v.status is VerdictStatus.PASS) for v in verdicts if reward_from_verdict(v) is not None]


def labelled(problem: Problem, verdicts: Sequence[Verdict]) -> Problem | None:
    """The problem with its pass sequence, pass rate and difficulty from `verdicts`; None when no
    sample was scored (every one an infra error)."""
    seq = pass_sequence(verdicts)
    if not seq:
        return None
    rate = Fraction(sum(seq), len(seq))
    return dataclasses.replace(
        problem, pass_sequence=seq, pass_rate=float(rate), difficulty=difficulty_from_pass_rate(rate)
    )


@dataclass
class Selection:
    """What pass-rate selection kept and why the rest went."""

    kept: list[Problem] = field(default_factory=list)
    below: list[str] = field(default_factory=list)  # problem ids under min_pass_rate
    above: list[str] = field(default_factory=list)  # over max_pass_rate
    unlabelled_kept: list[str] = field(default_factory=list)
    unlabelled_dropped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "kept": len(self.kept),
            "dropped_below_min": len(self.below),
            "dropped_above_max": len(self.above),
            "unlabelled_kept": len(self.unlabelled_kept),
            "unlabelled_dropped": len(self.unlabelled_dropped),
        }


def select_by_pass_rate(
    problems: Sequence[Problem],
    min_rate: float | None = None,
    max_rate: float | None = None,
    unlabelled: Literal["keep", "drop"] = "keep",
) -> Selection:
    """Keep the problems whose stored pass rate lies in [min_rate, max_rate] (a bound left None does
    not limit); problems without a label are kept or dropped as `unlabelled` says."""
    out = Selection()
    for p in problems:
        if p.pass_rate is None:
            (out.unlabelled_kept if unlabelled == "keep" else out.unlabelled_dropped).append(p.problem_id)
            if unlabelled == "keep":
                out.kept.append(p)
        elif min_rate is not None and p.pass_rate < min_rate:
            out.below.append(p.problem_id)
        elif max_rate is not None and p.pass_rate > max_rate:
            out.above.append(p.problem_id)
        else:
            out.kept.append(p)
    return out
