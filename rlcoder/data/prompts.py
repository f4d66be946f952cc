"""Prompt building: a Problem as chat messages in KodCode's two styles, rendered with the tokenizer's
chat template, with the prompt-length limit enforced here (trl 1.16 no longer truncates prompts);
and SFT examples (the reference solution as the assistant turn).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from rlcoder.config import DataSection
from rlcoder.records import Problem, RolloutRequest

Style = Literal["auto", "instruct", "complete"]
DEFAULT_SYSTEM_PROMPT: str = DataSection().system_prompt


class PromptTooLong(ValueError):
    """A rendered prompt has more tokens than allowed; callers drop the problem and count it."""

    def __init__(self, problem_id: str, n_tokens: int, limit: int) -> None:
        super().__init__(f"{problem_id}: prompt is {n_tokens} tokens, over the limit of {limit}")
        self.problem_id = problem_id
        self.n_tokens = n_tokens
        self.limit = limit


@dataclass
class PromptText:
    problem_id: str
    text: str  # the chat template's rendering, generation prompt included
    token_ids: list[int]  # `text` tokenized without adding special tokens (the template has them)
    style: str  # the style actually used: "instruct" or "complete"

    def request(self, step: int = 0, group: int = 0) -> RolloutRequest:
        """This prompt as the rollout fleet's unit of work, for RL step `step` (0: evaluation); `group`
        numbers a step's further groups (dynamic sampling)."""
        return RolloutRequest(self.problem_id, self.text, self.token_ids, step=step, group=group)


@dataclass
class SFTExample:
    """Prompt/completion strings for TRL's prompt-completion SFT format (loss on the completion)."""

    problem_id: str
    prompt: str  # same text as build_prompt's
    completion: str  # the assistant turn: the fenced reference solution and the template's end of turn
    n_tokens: int = 0  # prompt + completion tokens
    messages: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Messages (pure)


def resolve_style(problem: Problem, style: Style = "auto") -> str:
    if style == "auto":
        return problem.style if problem.style in ("instruct", "complete") else "instruct"
    if style not in ("instruct", "complete"):
        raise ValueError(f"style must be auto, instruct or complete, got {style!r}")
    return style


def user_message(problem: Problem, style: Style = "auto") -> str:
    """The user turn. Names the function the tests import, so the answer defines what they call."""
    name = problem.entry_point
    if resolve_style(problem, style) == "complete":
        head = "Complete the following Python function."
        if name:
            head = f"Complete the following Python function `{name}`."
        return (
            f"{head} Write the whole function, signature included, in one ```python code block.\n\n"
            f"```python\n{problem.question.rstrip()}\n```"
        )
    ask = "Write your solution in Python, in one ```python code block."
    if name:
        decl = problem.test_info[0].function_declaration.strip()
        kind = "class" if decl.startswith("class ") else "function"
        signature = f" with the signature `{decl}`" if decl and kind == "function" else ""
        ask = (
            f"Write a Python {kind} named `{name}`{signature}; the tests import it as "
            f"`from solution import {name}`. Answer with one ```python code block."
        )
    return f"{problem.question.rstrip()}\n\n{ask}"


def build_messages(
    problem: Problem, *, style: Style = "auto", system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user_message(problem, style)})
    return messages


def solution_message(problem: Problem) -> str:
    """The assistant turn an SFT example teaches: the reference solution in one fenced block."""
    return f"```python\n{problem.solution.strip()}\n```"


# ---------------------------------------------------------------------------------------------
# Rendering with a tokenizer (any HF tokenizer with a chat template)


def render_chat(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected str")
    return text


def encode_text(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def build_prompt(
    problem: Problem,
    tokenizer: Any,
    *,
    style: Style = "auto",
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_prompt_tokens: int | None = None,
) -> PromptText:
    """The chat prompt for a problem. Raises PromptTooLong over `max_prompt_tokens`."""
    messages = build_messages(problem, style=style, system_prompt=system_prompt)
    text = render_chat(tokenizer, messages, generation_prompt=True)
    ids = encode_text(tokenizer, text)
    if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        raise PromptTooLong(problem.problem_id, len(ids), max_prompt_tokens)
    return PromptText(problem.problem_id, text, ids, resolve_style(problem, style))


def build_prompts(
    problems: Iterable[Problem],
    tokenizer: Any,
    *,
    style: Style = "auto",
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_prompt_tokens: int | None = None,
) -> tuple[list[PromptText], list[PromptTooLong]]:
    """Prompts for the problems that fit, and the rejections of those that don't (for counting)."""
    kept, dropped = [], []
    for p in problems:
        try:
            limit = max_prompt_tokens
            kept.append(
                build_prompt(p, tokenizer, style=style, system_prompt=system_prompt, max_prompt_tokens=limit)
            )
        except PromptTooLong as exc:
            dropped.append(exc)
    return kept, dropped


def prompts_for(
    problems: Iterable[Problem], tokenizer: Any, data: DataSection
) -> tuple[list[PromptText], list[PromptTooLong]]:
    """`build_prompts` as the run's data config says (style, system prompt, length limit)."""
    return build_prompts(
        problems,
        tokenizer,
        style=data.prompt_style,
        system_prompt=data.system_prompt,
        max_prompt_tokens=data.max_prompt_tokens,
    )


def render_sft_example(
    problem: Problem,
    tokenizer: Any,
    *,
    style: Style = "auto",
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_prompt_tokens: int | None = None,
) -> SFTExample:
    """Prompt (as build_prompt renders it) plus the reference solution as the assistant turn.

    The completion is the full conversation's rendering minus the prompt's, so it carries exactly
    what the template puts after the generation prompt (the fenced code and the end-of-turn token).
    """
    prompt = build_prompt(
        problem, tokenizer, style=style, system_prompt=system_prompt, max_prompt_tokens=max_prompt_tokens
    )
    messages = [*build_messages(problem, style=style, system_prompt=system_prompt)]
    messages.append({"role": "assistant", "content": solution_message(problem)})
    full = render_chat(tokenizer, messages, generation_prompt=False)
    if not full.startswith(prompt.text):
        raise ValueError(
            f"{problem.problem_id}: the chat template renders the prompt differently with and without "
            "the assistant turn, so the completion cannot be split off"
        )
    completion = full[len(prompt.text) :]
    return SFTExample(
        problem.problem_id, prompt.text, completion, len(encode_text(tokenizer, full)), messages
    )
