"""Multi-turn SFT data: conversations (Code-Feedback style: a `conversations` or `messages` column of
{role, content} turns, or ShareGPT's {from, value}) as token ids with the loss on assistant turns only,
so a model can be warmed up to use execution feedback before multi-turn RL.

Each turn is tokenized on its own, exactly as the multi-turn rollout driver builds an episode: the
prompt as one piece, each assistant answer up to its end-of-turn token, the template text between
answers (the rest of the turn, the next user turn, the generation prompt) as one piece.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.data.prompts import build_messages, encode_text, render_chat, solution_message
from rlcoder.data.verification import SyncScorer
from rlcoder.records import Problem

COLUMNS = ("conversations", "messages")
ROLES = {"system": "system", "user": "user", "assistant": "assistant", "human": "user", "gpt": "assistant"}
PREFIX = "conversations:"  # an SFT stage source that holds conversations rather than problems


class ConversationError(ValueError):
    """A row is not a usable conversation; the message names the row and what is wrong."""


@dataclass
class TokenizedConversation:
    input_ids: list[int]
    assistant_masks: list[int]  # 1 on assistant tokens (trained on), 0 on everything else


def conversation_of(row: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    """The row's turns as chat messages, trailing non-assistant turns dropped (nothing to learn). A
    turn's optional "weight" (0 or 1, axolotl's convention) is kept: an assistant turn of weight 0 is
    context, not trained on."""
    column = next((c for c in COLUMNS if c in row), None)
    if column is None:
        raise ConversationError(f"row {index}: no {' or '.join(COLUMNS)} column (columns: {sorted(row)})")
    turns = row[column]
    if isinstance(turns, (str, bytes)) or not isinstance(turns, Iterable):
        raise ConversationError(f"row {index}: {column} must be a list of turns, got {type(turns).__name__}")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise ConversationError(
                f"row {index}: {column}[{i}] must be an object, got {type(turn).__name__}"
            )
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role not in ROLES or not isinstance(content, str):
            raise ConversationError(
                f"row {index}: {column}[{i}] needs a role in {', '.join(ROLES)} and a string content, "
                f"got role {role!r} and {type(content).__name__}"
            )
        weight = turn.get("weight", 1)
        if weight not in (0, 1):
            raise ConversationError(f"row {index}: {column}[{i}] weight must be 0 or 1, got {weight!r}")
        messages.append({"role": ROLES[role], "content": content, **({"weight": 0} if weight == 0 else {})})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if not messages or messages[0]["role"] == "assistant":
        raise ConversationError(f"row {index}: needs a user turn followed by an assistant turn")
    return messages


def tokenize_conversation(messages: list[dict[str, Any]], tokenizer: Any) -> TokenizedConversation:
    """Token ids of the whole conversation and the mask of the assistant answers' tokens (those of
    weight 1)."""
    eos = tokenizer.eos_token or ""
    ids: list[int] = []
    mask: list[int] = []
    covered = ""  # the rendering the ids so far stand for
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:i], generation_prompt=True)
        through = render_chat(tokenizer, messages[: i + 1], generation_prompt=False)
        if not before.startswith(covered) or not through.startswith(before):
            raise ConversationError(
                "the chat template renders earlier turns differently once later turns follow, so the "
                "conversation cannot be split into turns the way multi-turn rollouts see them"
            )
        answer = through[len(before) :]
        if eos and eos in answer:  # the answer ends at its end-of-turn token, as a sampled one does
            answer = answer[: answer.rindex(eos) + len(eos)]
        for text, bit in ((before[len(covered) :], 0), (answer, message.get("weight", 1))):
            piece = encode_text(tokenizer, text) if text else []
            ids += piece
            mask += [bit] * len(piece)
        covered = before + answer
    return TokenizedConversation(ids, mask)


def conversation_dataset(
    rows: Iterable[Mapping[str, Any]], tokenizer: Any, max_length: int, limit: int | None = None
):
    """(datasets.Dataset of input_ids/assistant_masks, dropped counts): TRL's SFTTrainer takes it as
    pre-tokenized and trains on the assistant tokens only. Conversations over `max_length` tokens are
    dropped, not truncated."""
    import datasets

    data: dict[str, list[list[int]]] = {"input_ids": [], "assistant_masks": []}
    too_long = 0
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        tokens = tokenize_conversation(conversation_of(row, index), tokenizer)
        if len(tokens.input_ids) > max_length:
            too_long += 1
            continue
        data["input_ids"].append(tokens.input_ids)
        data["assistant_masks"].append(tokens.assistant_masks)
    return datasets.Dataset.from_dict(data), {
        "dropped_prompt_too_long": 0,
        "dropped_over_max_length": too_long,
    }


# ---------------------------------------------------------------------------------------------
# Feedback conversations built from problems: a wrong first answer (a single-edit mutant of the
# reference that fails the public tests, else a stub), the sandbox's real feedback on it, then the
# reference solution. Warms a model up to fix its code after feedback (the laptop has no
# Code-Feedback download).

FEEDBACK_PREFIX = "feedback:"  # "conversations:feedback:<problem source>"
_MUTANTS_TRIED = 4


def stub_answer(problem: Problem) -> str:
    """A wrong first answer: the function the tests call, returning None."""
    decl = problem.test_info[0].function_declaration.strip() if problem.test_info else ""
    if not decl.startswith("def "):
        decl = f"def {problem.entry_point or 'solution'}(*args, **kwargs):"
    return solution_message(replace(problem, solution=f"{decl}\n    return None"))


def wrong_answers(problem: Problem) -> list[str]:
    """First-answer candidates, best first: mutants of the reference, then the stub."""
    from rlcoder.data.mutants import mutants

    fenced = [
        solution_message(replace(problem, solution=m))
        for m in mutants(problem.solution, _MUTANTS_TRIED, seed=problem.problem_id)
    ]
    return [*fenced, stub_answer(problem)]


def feedback_rows(
    problems: list[Problem], cfg: RunConfig, scorer: SyncScorer | None = None
) -> list[dict[str, Any]]:
    """One conversation per problem that has a first answer failing its public tests, with the real
    feedback on it; `scorer` defaults to the in-process reward sandbox."""
    from rlcoder.data.public_tests import with_public_tests
    from rlcoder.data.verification import completion_item
    from rlcoder.env.feedback import format_feedback
    from rlcoder.records import VerdictStatus

    if scorer is None:
        from reward import score

        scorer = score
    problems = [with_public_tests(p, cfg.data.public_tests) for p in problems]
    candidates = [(p, answer) for p in problems for answer in wrong_answers(p)]
    items = [
        completion_item(p, a, public=True, timeout_s=min(cfg.reward.limit_s(p.reference_runtime_s), 2.0))
        for p, a in candidates
    ]
    chosen: dict[str, tuple[str, str]] = {}
    for (p, answer), verdict in zip(candidates, scorer(items), strict=True):
        # a quick, readable failure: a loop or a memory blow-up teaches nothing about fixing code
        if p.problem_id not in chosen and verdict.status in (VerdictStatus.FAIL, VerdictStatus.ERROR):
            chosen[p.problem_id] = (
                answer,
                format_feedback(verdict, p.public_test, p.test_kind, cfg.rollout.feedback_max_chars),
            )
    rows = []
    for p in problems:
        if p.problem_id not in chosen:
            continue
        answer, feedback = chosen[p.problem_id]
        messages: list[dict[str, Any]] = [
            *build_messages(p, style=cfg.data.prompt_style, system_prompt=cfg.data.system_prompt)
        ]
        messages += [
            # the wrong answer is context only: trained on, it teaches the model to answer wrong first
            {"role": "assistant", "content": answer, "weight": 0},
            {"role": "user", "content": feedback},
            {"role": "assistant", "content": solution_message(p)},
        ]
        rows.append({"id": p.problem_id, "messages": messages})
    return rows


def plain_rows(problems: list[Problem], cfg: RunConfig) -> list[dict[str, Any]]:
    """One single-turn conversation per problem: the prompt and the problem's solution."""
    return [
        {
            "id": p.problem_id,
            "messages": [
                *build_messages(p, style=cfg.data.prompt_style, system_prompt=cfg.data.system_prompt),
                {"role": "assistant", "content": solution_message(p)},
            ],
        }
        for p in problems
    ]
