"""Prompt building with the tiny model's chat template: both styles name the function the tests import,
the length limit rejects over-long prompts, and SFT examples split into prompt + assistant turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcoder.data.problems import load_problems
from rlcoder.data.prompts import (
    DEFAULT_SYSTEM_PROMPT,
    PromptTooLong,
    build_messages,
    build_prompt,
    build_prompts,
    prompts_for,
    render_sft_example,
)
from rlcoder.records import FunctionInfo, Problem


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def instruct_problem() -> Problem:
    return Problem(
        problem_id="t_001",
        question="Write a function that returns the number of distinct characters of a string.",
        solution="def distinct_chars(s: str) -> int:\n    return len(set(s))\n",
        test="from solution import distinct_chars\n\ndef test_a():\n    assert distinct_chars('aab') == 2\n",
        test_info=[FunctionInfo("distinct_chars", "(s: str)", "def distinct_chars(s: str) -> int:", "")],
    )


def complete_problem() -> Problem:
    question = 'def halve(xs: list[int]) -> list[int]:\n    """Return each number of xs halved (floor)."""\n'
    return Problem(
        problem_id="t_002",
        question=question,
        solution=question + "    return [x // 2 for x in xs]\n",
        test="from solution import halve\n\ndef test_a():\n    assert halve([3]) == [1]\n",
        test_info=[FunctionInfo("halve", "(xs: list[int])", "def halve(xs: list[int]) -> list[int]:", "")],
        style="complete",
    )


def test_instruct_prompt_names_the_function_and_asks_for_one_block(tokenizer) -> None:
    p = build_prompt(instruct_problem(), tokenizer)
    assert p.style == "instruct"
    assert "`distinct_chars`" in p.text
    assert "from solution import distinct_chars" in p.text
    assert "def distinct_chars(s: str) -> int:" in p.text
    assert DEFAULT_SYSTEM_PROMPT in p.text
    assert "```python" in p.text
    # the chat template's generation prompt ends the text; ids are exactly the text's tokens
    assert p.text.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(p.token_ids) == p.text
    assert p.token_ids == tokenizer(p.text, add_special_tokens=False)["input_ids"]


def test_complete_prompt_shows_signature_and_docstring(tokenizer) -> None:
    problem = complete_problem()
    p = build_prompt(problem, tokenizer)
    assert p.style == "complete"
    assert problem.question.rstrip() in p.text
    assert "Complete the following Python function `halve`" in p.text
    # style can be forced either way
    assert build_prompt(problem, tokenizer, style="instruct").style == "instruct"
    assert build_prompt(instruct_problem(), tokenizer, style="complete").style == "complete"
    with pytest.raises(ValueError, match="style"):
        build_prompt(problem, tokenizer, style="chat")  # type: ignore[arg-type]


def test_system_prompt_can_be_replaced_or_dropped(tokenizer) -> None:
    problem = instruct_problem()
    assert build_messages(problem, system_prompt="Be brief.")[0] == {"role": "system", "content": "Be brief."}
    no_system = build_prompt(problem, tokenizer, system_prompt="")
    assert "system" not in no_system.text
    assert len(no_system.token_ids) < len(build_prompt(problem, tokenizer).token_ids)


def test_prompt_limit_rejects_over_long_prompts(tokenizer) -> None:
    problem = instruct_problem()
    n = len(build_prompt(problem, tokenizer).token_ids)
    assert len(build_prompt(problem, tokenizer, max_prompt_tokens=n).token_ids) == n
    with pytest.raises(PromptTooLong) as info:
        build_prompt(problem, tokenizer, max_prompt_tokens=n - 1)
    assert (info.value.problem_id, info.value.n_tokens, info.value.limit) == ("t_001", n, n - 1)
    long = instruct_problem()
    long.problem_id = "t_long"
    long.question += " Explain nothing." * 200
    kept, dropped = build_prompts([problem, long, complete_problem()], tokenizer, max_prompt_tokens=n + 40)
    assert [p.problem_id for p in kept] == ["t_001", "t_002"]
    assert [d.problem_id for d in dropped] == ["t_long"]
    assert all(len(p.token_ids) <= n + 40 for p in kept)


def test_prompts_for_follows_the_data_config(tokenizer) -> None:
    from rlcoder.config import DataSection

    data = DataSection(prompt_style="instruct", system_prompt="", max_prompt_tokens=384)
    problems = [instruct_problem(), complete_problem()]
    kept, dropped = prompts_for(problems, tokenizer, data)
    expected, _ = build_prompts(
        problems, tokenizer, style="instruct", system_prompt="", max_prompt_tokens=384
    )
    assert [p.token_ids for p in kept] == [p.token_ids for p in expected] and dropped == []
    default, _ = prompts_for(problems, tokenizer, DataSection())
    assert [p.token_ids for p in default] != [p.token_ids for p in kept]  # the system prompt is in
    request = kept[0].request(3)  # what the rollout fleet is asked for
    assert (request.problem_id, request.prompt, request.step) == (kept[0].problem_id, kept[0].text, 3)
    assert request.prompt_token_ids == kept[0].token_ids and kept[0].request().step == 0


def test_sft_example_is_prompt_plus_fenced_solution(tokenizer) -> None:
    problem = complete_problem()
    ex = render_sft_example(problem, tokenizer)
    assert ex.prompt == build_prompt(problem, tokenizer).text
    assert ex.completion.startswith("```python\ndef halve(")
    assert problem.solution.strip() in ex.completion
    assert ex.completion.rstrip().endswith("<|im_end|>")
    assert ex.n_tokens == len(tokenizer(ex.prompt + ex.completion, add_special_tokens=False)["input_ids"])
    assert ex.messages[-1]["role"] == "assistant"


def test_every_bundled_problem_renders_within_the_default_limit(tokenizer) -> None:
    problems = load_problems("bundled")
    kept, dropped = build_prompts(problems, tokenizer, max_prompt_tokens=512)
    assert dropped == []
    assert len(kept) == len(problems)
    for problem, prompt in zip(problems, kept, strict=True):
        assert problem.entry_point in prompt.text
