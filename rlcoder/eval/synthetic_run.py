"""A synthetic run directory for replay tests and the replay benchmark: groups of completions built
from problems' reference solutions and deliberately broken variants (wrong answer, syntax error,
prose only), scored for real, written where training writes its steps. No model, no training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlcoder.config import RunConfig
from rlcoder.data.verification import SyncScorer
from rlcoder.records import Problem, Rollout, ScoredGroup, reward_from_verdict
from rlcoder.run_dir import RunDir, write_resolved

KINDS = ("reference", "wrong", "syntax", "prose")  # what each sample of a group is, in order


def completion(problem: Problem, kind: str, tag: str = "") -> str:
    """A model-like answer of the given kind; `tag` (a comment) makes otherwise equal programs differ,
    so the reward service's result cache does not answer for them."""
    note = f"# {tag}\n" if tag else ""
    if kind == "reference":
        return f"Here is my solution.\n```python\n{note}{problem.solution.rstrip()}\n```\n"
    if kind == "wrong":
        name = problem.entry_point or "solve"
        return f"```python\n{note}def {name}(*args, **kwargs):\n    return None\n```\n"
    if kind == "syntax":
        return f"```python\n{note}def broken(:\n    return\n```\n"
    if kind == "prose":
        return f"I am not sure how to solve this. {tag}"
    raise ValueError(f"unknown completion kind {kind!r}")


def synthetic_groups(
    problems: Sequence[Problem], steps: int, kinds: Sequence[str] = KINDS, unique: bool = False
) -> list[ScoredGroup]:
    """Unscored groups (no verdicts): one per problem per step, one sample per kind."""
    groups = []
    for step in range(1, steps + 1):
        for p in problems:
            rollouts = [
                Rollout(
                    rollout_id=f"{step}-{p.problem_id}-{i}",
                    problem_id=p.problem_id,
                    sample_index=i,
                    prompt="",
                    prompt_token_ids=[],
                    completion_token_ids=[],
                    completion_logprobs=[],
                    completion_text=completion(p, kind, f"step {step} sample {i}" if unique else ""),
                    finish_reason="stop",
                    policy_version=step - 1,
                    step=step,
                )
                for i, kind in enumerate(kinds)
            ]
            groups.append(ScoredGroup(p.problem_id, rollouts, [], [], step=step))
    return groups


def score_groups(
    groups: list[ScoredGroup], problems: dict[str, Problem], score: SyncScorer, cfg: RunConfig
) -> None:
    """Fill in verdicts and rewards, as the learner records them."""
    from rlcoder.data.verification import rollout_item

    items = [rollout_item(problems[g.problem_id], r, cfg.reward) for g in groups for r in g.rollouts]
    verdicts = iter(score(items))
    for g in groups:
        g.verdicts = [next(verdicts) for _ in g.rollouts]
        g.rewards = [reward_from_verdict(v) for v in g.verdicts]


def write_run(root: Path, cfg: RunConfig, groups: Sequence[ScoredGroup], stage: str = "grpo") -> Path:
    """config.resolved.yaml and <stage>/steps/step_NNNNNN.jsonl, as `rlcoder train` lays them out."""
    write_resolved(cfg, root)
    steps: dict[int, list[ScoredGroup]] = {}
    for g in groups:
        steps.setdefault(g.step, []).append(g)
    stage_dir = RunDir(root).stage(stage)
    for step, gs in sorted(steps.items()):
        stage_dir.write_step(step, gs)
    return root
