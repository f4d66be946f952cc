"""`rlcoder eval`: sample n completions per eval problem with the rollout fleet, score them, and report
pass@1 / pass@k; the scored samples are saved so `rlcoder replay` can re-score them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, load_config
from rlcoder.run_dir import atomic_write_text


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
    from rlcoder.data.problems import ProblemLoadError, load_problems
    from rlcoder.eval.report import format_summary, html_report, parse_ks, summarize
    from rlcoder.eval.sampling import pass_rate_by_turn
    from rlcoder.records import to_json
    from rlcoder.run.evaluate import sample_policy

    cfg = load_config(args.config, args.overrides)
    source = args.problems or cfg.data.eval_source
    n = args.n or cfg.eval.samples_per_problem
    try:
        ks = [k for k in parse_ks(args.k) if k <= n]
        problems = {p.problem_id: p for p in load_problems(source, limit=args.limit)}
    except (ProblemLoadError, ValueError) as exc:
        raise ConfigError(f"eval: {exc}") from None
    out = Path(args.out or Path(cfg.run_dir) / "eval" / source.replace(":", "_").replace("/", "_"))
    groups, dropped = sample_policy(cfg, args.model or cfg.model.name_or_path, problems, n)
    out.mkdir(parents=True, exist_ok=True)
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
