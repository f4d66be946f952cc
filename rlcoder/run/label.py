"""`rlcoder data label`'s job: sample n completions per problem from a model with the rollout fleet, score
them, and append each problem as a KodCode row with its pass sequence, pass rate and difficulty label
(KodCode's rule). Resumable: problems already in the output are skipped; a torn last line is dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rlcoder.config import RunConfig
from rlcoder.console import Log, log_stderr
from rlcoder.records import Problem
from rlcoder.run.model_paths import resolve_model_path
from rlcoder.run.services import ray_session, reward_scorer, rollout_fleet
from rlcoder.run_dir import append_jsonl, claim_appendable


@dataclass
class LabelReport:
    """What a labelling run wrote (this run's problems only; `skipped` were in the output already)."""

    labelled: list[Problem] = field(default_factory=list)
    skipped: int = 0
    unscored: list[str] = field(default_factory=list)  # every sample an infra error: no label written
    too_long: list[str] = field(default_factory=list)  # prompt over data.max_prompt_tokens

    def by_difficulty(self) -> dict[str, int]:
        return dict(Counter(p.difficulty for p in self.labelled))


def label_problems(
    cfg: RunConfig,
    model: str,
    problems: list[Problem],
    n: int,
    out: Path,
    *,
    resume: bool = False,
    chunk: int = 16,
    log: Log = log_stderr,
) -> LabelReport:
    """Label `problems` by `n` samples each of `model` into `out` (.jsonl), `chunk` problems at a time.
    An existing `out` is continued only with `resume`: nothing is overwritten."""
    from rlcoder.data.labels import labelled
    from rlcoder.data.problems import problem_to_row
    from rlcoder.data.prompts import prompts_for
    from rlcoder.eval.sampling import sample_and_score
    from rlcoder.learn.loader import load_tokenizer

    done = claim_appendable(out, resume)
    report = LabelReport(skipped=sum(p.problem_id in done for p in problems))
    todo = {p.problem_id: p for p in problems if p.problem_id not in done}
    model_path = resolve_model_path(model)
    tokenizer = load_tokenizer(cfg, model_path)
    prompts, too_long = prompts_for(todo.values(), tokenizer, cfg.data)
    report.too_long = [p.problem_id for p in too_long]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch()
    log(
        f"[label] {len(prompts)} problems x {n} samples with {model_path} ({report.skipped} already in {out})"
    )
    with ray_session(cfg), reward_scorer(cfg) as scorer, rollout_fleet(cfg, model_path) as fleet:
        for start in range(0, len(prompts), chunk):
            part = prompts[start : start + chunk]
            groups = sample_and_score(fleet, scorer, todo, [p.request() for p in part], cfg, n)
            rows = []
            for g in groups:
                row = labelled(todo[g.problem_id], g.verdicts)
                if row is None:
                    report.unscored.append(g.problem_id)
                else:
                    rows.append(row)
            append_jsonl(out, [problem_to_row(p) for p in rows])
            report.labelled.extend(rows)
            log(f"[label] {start + len(part)}/{len(prompts)} problems labelled")
    return report
