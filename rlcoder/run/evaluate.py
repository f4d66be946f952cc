"""`rlcoder eval`'s job: start Ray, the reward service and the rollout fleet for a model, and sample and
score n completions per problem (from multi-turn episodes when rollout.turns > 1)."""

from __future__ import annotations

from rlcoder.config import RunConfig
from rlcoder.console import log_stderr
from rlcoder.records import Problem, ScoredGroup
from rlcoder.run.model_paths import resolve_model_path
from rlcoder.run.services import ray_session, reward_scorer, rollout_fleet, rollout_source


def sample_policy(
    cfg: RunConfig, model: str, problems: dict[str, Problem], n: int
) -> tuple[list[ScoredGroup], int]:
    """n scored samples per problem from `model`, and how many prompts were too long to ask."""
    from rlcoder.data.prompts import prompts_for
    from rlcoder.eval.sampling import sample_and_score
    from rlcoder.learn.loader import load_tokenizer

    model_path = resolve_model_path(model)
    tokenizer = load_tokenizer(cfg, model_path)
    prompts, too_long = prompts_for(problems.values(), tokenizer, cfg.data)
    requests = [p.request() for p in prompts]
    log_stderr(f"[eval] {len(requests)} problems x {n} samples with {model_path}")
    with ray_session(cfg), reward_scorer(cfg) as scorer, rollout_fleet(cfg, model_path) as fleet:
        source = rollout_source(cfg, fleet, scorer, problems, tokenizer)
        return sample_and_score(source, scorer, problems, requests, cfg, n), len(too_long)
