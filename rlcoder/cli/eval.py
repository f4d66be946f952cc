"""`rlcoder eval`: sample n completions per eval problem with the rollout fleet, score them, and report
pass@1 / pass@k; the scored samples are saved so `rlcoder replay` can re-score them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlcoder.config import ConfigError, load_config
from rlcoder.run_dir import atomic_write_text, eval_dir, refuse_existing

DEFAULT_KS = (1, 2, 4, 8, 16, 32, 64, 128)
EVAL_SUMMARY = "eval_summary.json"  # written last: an eval folder holding it is a finished eval


def add_eval_args(p: Any) -> None:
    p.add_argument("--config", "-c", help="YAML run config (rollout, reward and eval settings)")
    p.add_argument(
        "--model", help="model to evaluate: a directory, hub id or 'tiny' (default: model.name_or_path)"
    )
    p.add_argument("--problems", help="eval set (default: data.eval_source), e.g. bundled:eval or humaneval")
    p.add_argument("--n", type=int, help="samples per problem (default: eval.samples_per_problem)")
    p.add_argument(
        "--k", help="pass@k for these k (comma-separated, each k <= n; default: 1, 2, 4, ... up to n)"
    )
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--out", help="output folder (default: <run_dir>/eval/<model>/<problems>)")
    p.add_argument("--force", action="store_true", help="overwrite an earlier eval in the output folder")
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
    from rlcoder.run.model_paths import checked_model_path
    from rlcoder.run.preflight import check_ks, check_source

    cfg = load_config(args.config, args.overrides)
    source = args.problems or cfg.data.eval_source
    model = args.model or cfg.model.name_or_path
    n = args.n or cfg.eval.samples_per_problem
    # CHECK: everything below is refused before a model is loaded or a sample drawn
    try:
        ks = parse_ks(args.k) if args.k else [k for k in DEFAULT_KS if k <= n]
    except ValueError as exc:
        raise ConfigError(f"--k: {exc}") from None
    check_ks(ks, n)
    out = Path(args.out) if args.out else eval_dir(cfg.run_dir, model, source)
    refuse_existing(out / EVAL_SUMMARY, args.force)
    check_source(source, "--problems" if args.problems else "data.eval_source")
    checked_model_path(model)
    try:
        problems = {p.problem_id: p for p in load_problems(source, limit=args.limit)}
    except (ProblemLoadError, ValueError) as exc:
        raise ConfigError(f"eval: {exc}") from None
    # SAMPLE and SCORE
    groups, dropped = sample_policy(cfg, model, problems, n)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "samples.jsonl", "".join(to_json(g) + "\n" for g in groups))
    summary = summarize(groups, problems, ks, by="problem")
    text = format_summary(summary)
    by_turn = pass_rate_by_turn(groups, cfg.rollout.turns)
    if by_turn:
        text += "\n\npass rate after turn: " + "  ".join(f"{t}: {v:.1%}" for t, v in by_turn.items())
    print(
        f"eval of {model} on {source}: {len(groups)} problems x {n} samples "
        f"({dropped} prompts over data.max_prompt_tokens left out)\n\n{text}"
    )
    result = {
        "model": model,
        "problems": source,
        "samples_per_problem": n,
        "temperature": cfg.rollout.temperature,
        "pass_rate": summary.overall.value,
        "pass_at_k": {str(k): v for k, (v, _) in summary.pass_at.items()},
        "verdicts": summary.verdicts,
        "prompts_too_long": dropped,
        "pass_rate_by_turn": {str(t): v for t, v in by_turn.items()},
    }
    atomic_write_text(out / EVAL_SUMMARY, json.dumps(result, indent=1, sort_keys=True) + "\n")
    (out / "report.html").write_text(html_report(f"Eval on {source}", summary), encoding="utf-8")
    print(f"wrote {out}/samples.jsonl, eval_summary.json and report.html")
    return 0
