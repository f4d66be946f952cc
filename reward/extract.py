"""Code extraction: turn a model completion into the program to run, or None when there is none.

Handles fenced blocks (picking the one that defines the entry point), bare code with prose around it,
and `complete`-style continuations of a code prompt. Pure functions, no I/O.
"""

from __future__ import annotations

import ast
import re

# Completions longer than this are not parsed for heuristics (a 10 MB completion must stay cheap);
# fenced blocks are still found with a linear scan.
MAX_PARSE_CHARS = 400_000

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_PY_LANGS = {"", "python", "py", "python3", "py3", "pycon", "ipython", "sage"}
_CODE_START = re.compile(r"^(def |class |import |from \S+ import |@|async def |if __name__)", re.M)


def extract_code(completion: str, prompt: str = "", entry_point: str = "") -> str | None:
    """The program to run for `completion`, or None (no_code) when it holds nothing runnable.

    `prompt` is code the completion continues (`complete` style: a signature and docstring); it is
    prepended when the completion is a body continuation, and its imports are kept otherwise.
    """
    text = _clean(completion)
    if not text.strip():
        return None
    blocks = _fenced_blocks(text)
    if blocks:
        code = _choose_block(blocks, entry_point)
        if code is None:
            return None
    elif _looks_like_code(text, prompt):
        code = _bare_code(text, prompt)
    else:
        return None
    return _join_with_prompt(code, prompt, entry_point)


def _clean(text: str) -> str:
    # Lone surrogates (from non-UTF-8 bytes decoded with surrogateescape) cannot be written out as
    # UTF-8 source; replace them so the program fails to parse or runs, instead of crashing us.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order; an unterminated last fence runs to the end."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]


def _choose_block(blocks: list[tuple[str, str]], entry_point: str) -> str | None:
    python = [body for lang, body in blocks if lang in _PY_LANGS and body.strip()]
    if not python:
        return None
    if entry_point:
        defining = [b for b in python if _defines(b, entry_point)]
        if defining:
            # Later blocks are usually the corrected version; blocks after the definition that only
            # exercise it (examples, asserts) are left out, as a solution file would.
            return defining[-1]
    with_defs = [b for b in python if re.search(r"^\s*(async\s+)?(def|class)\s", b, re.M)]
    pool = with_defs or python
    return max(pool, key=len)


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", code, re.M) is not None or (
        re.search(rf"^{re.escape(name)}\s*=", code, re.M) is not None
    )


def _looks_like_code(text: str, prompt: str) -> bool:
    if _CODE_START.search(text):
        return True
    if prompt and _is_continuation(text):
        return True
    return len(text) <= MAX_PARSE_CHARS and _parses(text) and _has_statement_beyond_expr(text)


def _is_continuation(text: str) -> bool:
    """An indented body that continues a signature in the prompt."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    return first.startswith((" ", "\t"))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _has_statement_beyond_expr(code: str) -> bool:
    """True for real code; prose that happens to parse ("Hello") is a bare expression statement."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)


def _bare_code(text: str, prompt: str) -> str:
    """Code without fences: drop leading and trailing prose lines while that makes it parse."""
    if prompt and _is_continuation(text):
        return _trim_trailing_prose(text)
    if len(text) > MAX_PARSE_CHARS or _parses(text):
        return text
    start = _CODE_START.search(text)
    body = text[start.start() :] if start else text
    return _trim_trailing_prose(body)


def _trim_trailing_prose(code: str) -> str:
    if len(code) > MAX_PARSE_CHARS or _parses(code):
        return code
    lines = code.rstrip("\n").split("\n")
    # Walk back over trailing unindented lines (explanations after the code) until it parses.
    for end in range(len(lines) - 1, 0, -1):
        if lines[end].startswith((" ", "\t")):
            break
        candidate = "\n".join(lines[:end]) + "\n"
        if _parses(candidate):
            return candidate
    return code


def _join_with_prompt(code: str, prompt: str, entry_point: str) -> str:
    if not prompt.strip():
        return code
    if _is_continuation(code) or (
        entry_point and not _defines(code, entry_point) and _defines(prompt, entry_point)
    ):
        joined = prompt if prompt.endswith("\n") else prompt + "\n"
        return joined + code
    # The completion restated the function: keep the prompt's imports (HumanEval prompts import
    # `List` and friends that the restated signature uses).
    imports = [
        line
        for line in prompt.split("\n")
        if re.match(r"^(import |from \S+ import )", line) and line not in code
    ]
    return "\n".join([*imports, code]) if imports else code
