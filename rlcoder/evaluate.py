"""Measuring a policy: sample n completions per problem with the rollout fleet, score them, and
summarize as pass rates and unbiased pass@k (Chen et al. 2021, the Codex paper); `rlcoder eval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlcoder.config import RunConfig
from rlcoder.records import (
    Problem,
    RolloutRequest,
    ScoredGroup,
    VerdictStatus,
)
from rlcoder.seams import RolloutSource, Scorer


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n, of which c are
    correct, is correct: 1 - C(n-c, k) / C(n, k), computed stably."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass
class EvalSummary:
    """Per-problem sample and pass counts, and what they add up to."""

    samples: dict[str, int] = field(default_factory=dict)  # problem_id -> n scored samples
    passed: dict[str, int] = field(default_factory=dict)  # problem_id -> c passing samples
    infra_errors: int = 0

    @classmethod
    def from_groups(
        cls, groups: Sequence[ScoredGroup], by: Literal["problem", "group"] = "problem"
    ) -> EvalSummary:
        """Counts per problem (eval: one policy), or per group (a training run: each step's group
        comes from another policy, so its samples are not pooled with other steps')."""
        out = cls()
        for i, g in enumerate(groups):
            key = g.problem_id if by == "problem" else f"{g.step}/{g.problem_id}/{i}"
            for v in g.verdicts:
                if v.status is VerdictStatus.INFRA_ERROR:
                    out.infra_errors += 1
                    continue
                out.samples[key] = out.samples.get(key, 0) + 1
                out.passed[key] = out.passed.get(key, 0) + int(v.status is VerdictStatus.PASS)
        return out

    @property
    def pass_rate(self) -> float:
        """Passing samples over scored samples: pass@1 averaged over problems when n is equal."""
        n = sum(self.samples.values())
        return sum(self.passed.values()) / n if n else 0.0

    def pass_at(self, k: int) -> float:
        """Mean unbiased pass@k over problems with at least k scored samples."""
        values = [pass_at_k(n, self.passed[p], k) for p, n in self.samples.items() if n >= k]
        return sum(values) / len(values) if values else float("nan")

    def solved(self) -> int:
        return sum(1 for c in self.passed.values() if c > 0)

    def pass_at_ks(self, ks: Sequence[int]) -> dict[int, tuple[float, int]]:
        """k -> (mean pass@k, how many problems had at least k samples), for every k some have."""
        out = {}
        for k in ks:
            eligible = sum(1 for n in self.samples.values() if n >= k)
            if eligible:
                out[k] = (self.pass_at(k), eligible)
        return out


def sample_and_score(
    fleet: RolloutSource,
    scorer: Scorer,
    problems: dict[str, Problem],
    requests: list[RolloutRequest],
    cfg: RunConfig,
    n: int,
    tokenizer: Any = None,
) -> list[ScoredGroup]:
    """One group of n samples per request, scored; infra errors are kept as verdicts (and counted
    apart by EvalSummary), never turned into failures. With rollout.turns > 1 each sample is an
    episode with execution feedback (needs the tokenizer), scored by its final answer; its turns
    keep their own verdicts for `pass_rate_by_turn`."""
    from rlcoder.records import RewardMode, reward_from_verdict
    from rlcoder.rl_loop import group_scored, sampling_spec, score_item

    mode = RewardMode(cfg.reward.mode)
    if cfg.rollout.turns > 1:
        from rlcoder.multiturn import groups_after_turn, run_episodes

        episodes = run_episodes(fleet, scorer, problems, requests, tokenizer, cfg, n=n)
        return groups_after_turn(episodes, cfg.rollout.turns, mode)
    sampling = dataclasses.replace(sampling_spec(cfg), n=n)
    rollouts = [r for group in fleet.generate_all(requests, sampling) for r in group]
    items = [score_item(problems[r.problem_id], r, cfg) for r in rollouts]
    verdicts = asyncio.run(scorer.score(items))
    return group_scored(rollouts, verdicts, [reward_from_verdict(v, mode) for v in verdicts])


def pass_rate_by_turn(groups: Sequence[ScoredGroup], turns: int) -> dict[int, float]:
    """Pass rate of multi-turn episodes had they stopped after turn 1, 2, ... `turns` (the last is
    OpenCodeInterpreter's "+ execution feedback" column); empty for single-turn samples."""
    from rlcoder.multiturn import groups_after_turn

    if turns < 2 or not all(r.turns for g in groups for r in g.rollouts):
        return {}
    episodes = [g.rollouts for g in groups]
    return {t: EvalSummary.from_groups(groups_after_turn(episodes, t)).pass_rate for t in range(1, turns + 1)}


# ---------------------------------------------------------------------------------------------
# `rlcoder eval`


def add_eval_args(p: Any) -> None:
    p.add_argument("--config", "-c", help="YAML run config (rollout, reward and eval settings)")
    p.add_argument(
        "--model", help="model to evaluate: a directory, hub id or 'tiny' (default: model.name_or_path)"
    )
    p.add_argument("--problems", help="eval set (default: data.eval_source), e.g. bundled:eval or humaneval")
    p.add_argument("--n", type=int, help="samples per problem (default: eval.samples_per_problem)")
    p.add_argument("--k", default="1,2,4,8,16", help="pass@k for these k (comma-separated, k <= n)")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--out", help="output folder (default: <run_dir>/eval/<problems>)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="dotted config overrides")


def cmd_eval(args: Any) -> int:
    """Sample n completions per eval problem with the rollout fleet, score them with the reward
    service, and report pass@1 / pass@k through the replay summary code; the scored samples are saved
    as ScoredGroup lines, so `rlcoder replay` can re-score them later."""
    import json
    from pathlib import Path

    from rlcoder.config import ConfigError, load_config
    from rlcoder.problems import ProblemLoadError, load_problems
    from rlcoder.report import format_summary, html_report, parse_ks, summarize
    from rlcoder.run_dir import atomic_write_text

    cfg = load_config(args.config, args.overrides)
    source = args.problems or cfg.data.eval_source
    n = args.n or cfg.eval.samples_per_problem
    try:
        ks = [k for k in parse_ks(args.k) if k <= n]
        problems = {p.problem_id: p for p in load_problems(source, limit=args.limit)}
    except (ProblemLoadError, ValueError) as exc:
        raise ConfigError(f"eval: {exc}") from None
    out = Path(args.out or Path(cfg.run_dir) / "eval" / source.replace(":", "_").replace("/", "_"))
    groups, dropped = _sample(cfg, args.model or cfg.model.name_or_path, problems, n)
    out.mkdir(parents=True, exist_ok=True)
    from rlcoder.records import to_json

    atomic_write_text(out / "samples.jsonl", "".join(to_json(g) + "\n" for g in groups))
    summary = summarize(groups, problems, ks, by="problem")
    text = format_summary(summary)
    by_turn = pass_rate_by_turn(groups, cfg.rollout.turns)
    if by_turn:
        text += "\n\npass rate after turn: " + "  ".join(f"{t}: {v:.1%}" for t, v in by_turn.items())
    print(
        f"eval of {args.model or cfg.model.name_or_path} on {source}: {len(groups)} problems x {n} samples "
        f"({dropped} prompts over data.max_prompt_tokens left out)\n\n{text}"
    )
    result = {
        "model": args.model or cfg.model.name_or_path,
        "problems": source,
        "samples_per_problem": n,
        "temperature": cfg.rollout.temperature,
        "pass_rate": summary.overall.value,
        "pass_at_k": {str(k): v for k, (v, _) in summary.pass_at.items()},
        "verdicts": summary.verdicts,
        "prompts_too_long": dropped,
        "pass_rate_by_turn": {str(t): v for t, v in by_turn.items()},
    }
    atomic_write_text(out / "eval_summary.json", json.dumps(result, indent=1, sort_keys=True) + "\n")
    (out / "report.html").write_text(html_report(f"Eval on {source}", summary), encoding="utf-8")
    print(f"wrote {out}/samples.jsonl, eval_summary.json and report.html")
    return 0


def _sample(
    cfg: RunConfig, model: str, problems: dict[str, Problem], n: int
) -> tuple[list[ScoredGroup], int]:
    from transformers import AutoTokenizer

    from rlcoder.infra import ray_session, reward_scorer, rollout_fleet
    from rlcoder.models import resolve_model_path
    from rlcoder.prompts import prompts_for

    model_path = resolve_model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts, too_long = prompts_for(problems.values(), tokenizer, cfg.data)
    requests = [p.request() for p in prompts]
    print(f"[eval] {len(requests)} problems x {n} samples with {model_path}", file=sys.stderr, flush=True)
    with ray_session(cfg), reward_scorer(cfg) as scorer, rollout_fleet(cfg, model_path) as fleet:
        return sample_and_score(fleet, scorer, problems, requests, cfg, n, tokenizer), len(too_long)
