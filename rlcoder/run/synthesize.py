"""`rlcoder data synthesize`'s job: the model answers each question with a solution and a pytest file
(rlcoder.data.synthesis), the reward service checks them, and verified triplets are appended as KodCode
rows to --out, rejected questions with each attempt's verdict to <out>.rejected.jsonl. Resumable:
questions already in either file are skipped; nothing is overwritten."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rlcoder.config import RunConfig
from rlcoder.console import Log, log_stderr
from rlcoder.data.synthesis import Outcome, synthesis_message, synthesize
from rlcoder.run.model_paths import resolve_model_path
from rlcoder.run.services import ray_session, reward_scorer, rollout_fleet
from rlcoder.run_dir import append_jsonl, claim_appendable


def rejected_path(out: Path) -> Path:
    return out.with_name(out.stem + ".rejected.jsonl")


def load_questions(source: str, limit: int | None = None) -> list[tuple[str, str]]:
    """(question_id, question) pairs: the questions of a problem source (bundled, humaneval), or the
    `question` column (and `question_id`, else q-<row>) of any jsonl/parquet/hub dataset."""
    from rlcoder.data.problems import BUNDLED, ProblemLoadError, load_problems, open_rows

    if source.split(":", maxsplit=1)[0] in (BUNDLED, "humaneval"):
        return [(p.problem_id, p.question) for p in load_problems(source, limit=limit)]
    out = []
    for i, row in enumerate(open_rows(source)):
        if limit is not None and i >= limit:
            break
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ProblemLoadError(f"{source}: row {i}: column 'question' must be a non-empty string")
        out.append((str(row.get("question_id") or f"q-{i}"), question))
    return out


def write_outcomes(out: Path, outcomes: list[Outcome]) -> tuple[int, int]:
    """Append verified triplets to `out` and the rest to its .rejected.jsonl; (verified, rejected)."""
    from rlcoder.data.problems import problem_to_row

    kept = [o for o in outcomes if o.verified is not None]
    rows = [{**problem_to_row(o.problem()), "synthesis_attempts": len(o.attempts)} for o in kept]
    append_jsonl(out, rows)
    rejected = [
        {
            "question_id": o.question_id,
            "question": o.question,
            "attempts": [dataclasses.asdict(a) for a in o.attempts],
        }
        for o in outcomes
        if o.verified is None
    ]
    append_jsonl(rejected_path(out), rejected)
    return len(kept), len(rejected)


def synthesize_problems(
    cfg: RunConfig,
    model: str,
    questions: list[tuple[str, str]],
    out: Path,
    *,
    attempts: int = 3,
    resume: bool = False,
    chunk: int = 16,
    log: Log = log_stderr,
) -> tuple[int, int, int]:
    """Synthesize triplets for `questions` with `model`; returns (verified, rejected, skipped)."""
    from rlcoder.data.prompts import encode_text, render_chat
    from rlcoder.learn.loader import load_tokenizer
    from rlcoder.records import RolloutRequest
    from rlcoder.specs import sampling_spec

    done = claim_appendable(out, resume, rejected_path(out))
    todo = [(qid, q) for qid, q in questions if qid not in done]
    model_path = resolve_model_path(model)
    tokenizer = load_tokenizer(cfg, model_path)
    system = [{"role": "system", "content": cfg.data.system_prompt}] if cfg.data.system_prompt else []

    def request(qid: str, question: str) -> RolloutRequest:
        messages = [*system, {"role": "user", "content": synthesis_message(question)}]
        text = render_chat(tokenizer, messages, generation_prompt=True)
        return RolloutRequest(qid, text, encode_text(tokenizer, text))

    out.parent.mkdir(parents=True, exist_ok=True)
    totals = [0, 0]
    log(f"[synthesize] {len(todo)} questions, up to {attempts} attempts each, with {model_path}")
    with ray_session(cfg), reward_scorer(cfg) as client, rollout_fleet(cfg, model_path) as fleet:

        def generate(batch: list[tuple[str, str]]) -> list[str]:
            groups = fleet.generate_all([request(qid, q) for qid, q in batch], sampling_spec(cfg, 1))
            return [g[0].completion_text for g in groups]

        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            outcomes = synthesize(part, generate, client.score_sync, attempts, cfg.reward.limit_s())
            for i, n in enumerate(write_outcomes(out, outcomes)):
                totals[i] += n
            done_now = start + len(part)
            log(f"[synthesize] {done_now}/{len(todo)} questions: {totals[0]} verified, {totals[1]} rejected")
    return totals[0], totals[1], len(questions) - len(todo)
