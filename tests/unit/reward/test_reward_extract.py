"""Code extraction from completions: fences, bare code, continuations, nothing to run."""

from __future__ import annotations

import time

from reward.extract import extract_code


def test_single_fenced_block_is_taken_without_prose():
    completion = "Sure! Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nThis adds."
    assert extract_code(completion) == "def add(a, b):\n    return a + b\n"


def test_block_defining_the_entry_point_wins_over_usage_blocks():
    completion = (
        "```python\ndef helper():\n    return 1\n```\n"
        "```python\ndef solve(x):\n    return x * 2\n```\n"
        "Usage:\n```python\nprint(solve(3))\nassert solve(2) == 4\n```\n"
    )
    code = extract_code(completion, entry_point="solve")
    assert code is not None and "def solve" in code and "print(" not in code


def test_later_definition_is_preferred_when_the_answer_is_revised():
    completion = (
        "```python\ndef f(x):\n    return x\n```\nOops, fixed:\n```py\ndef f(x):\n    return x + 1\n```"
    )
    assert extract_code(completion, entry_point="f") == "def f(x):\n    return x + 1\n"


def test_unterminated_fence_runs_to_the_end():
    assert extract_code("```python\ndef f():\n    return 3\n") == "def f():\n    return 3\n"


def test_non_python_fences_are_not_code():
    assert extract_code("```bash\npip install numpy\n```\n```text\nhello\n```") is None


def test_bare_code_with_leading_and_trailing_prose():
    completion = "The answer:\ndef sq(x):\n    return x * x\nThat squares x."
    code = extract_code(completion, entry_point="sq")
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["sq"](4) == 16  # type: ignore[operator]


def test_complete_style_body_is_appended_to_the_prompt():
    prompt = 'def add(a, b):\n    """Add two numbers."""\n'
    code = extract_code("    return a + b\n", prompt=prompt, entry_point="add")
    namespace: dict[str, object] = {}
    exec(code or "", namespace)
    assert namespace["add"](2, 3) == 5  # type: ignore[operator]


def test_restated_function_keeps_the_prompt_imports():
    prompt = "from typing import List\n\ndef total(xs: List[int]) -> int:\n    pass\n"
    completion = "```python\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n```"
    code = extract_code(completion, prompt=prompt, entry_point="total")
    assert code is not None and code.startswith("from typing import List")
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["total"]([1, 2]) == 3  # type: ignore[operator]


def test_nothing_to_run():
    assert extract_code("") is None
    assert extract_code("   \n\t") is None
    assert extract_code("I cannot solve this, sorry.") is None
    assert extract_code("Hello") is None


def test_broken_code_is_still_returned_so_it_can_fail():
    code = extract_code("```python\ndef f(x)\n    return x\n```")
    assert code == "def f(x)\n    return x\n"


def test_ten_megabyte_completion_is_cheap():
    started = time.perf_counter()
    assert extract_code("word " * (2 << 20)) is None
    assert time.perf_counter() - started < 5.0


def test_non_utf8_surrogates_do_not_crash():
    code = extract_code("```python\ndef f():\n    return '\udcff'\n```")
    assert code is not None
    code.encode("utf-8")  # writable as a source file
