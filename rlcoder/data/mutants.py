"""Single-edit mutants of a reference solution: `<` for `<=`, `+` for `-`, `min` for `max`, an
integer off by one. Real SFT data holds buggy code next to correct code; on a laptop, mixing a few
mutants into the SFT data reproduces that in miniature: the SFT policy then hesitates between the
correct and the buggy branch of a few tokens, and RL against the tests has a choice to learn (pure)."""

from __future__ import annotations

import io
import random
import tokenize

_SWAPS = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "+": "-",
    "-": "+",
    "and": "or",
    "or": "and",
    "True": "False",
    "False": "True",
    "min": "max",
    "max": "min",
}


def mutation_sites(source: str) -> list[tuple[int, int, str]]:
    """(start offset, end offset, replacement) for every token a mutant may change."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    sites = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    for tok in tokens:
        if tok.type not in (tokenize.OP, tokenize.NAME, tokenize.NUMBER):
            continue
        if tok.string in _SWAPS:
            replacement = _SWAPS[tok.string]
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            replacement = str(int(tok.string) + 1)
        else:
            continue
        start = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        sites.append((start, end, replacement))
    return sites


def mutants(source: str, count: int, *, seed: str) -> list[str]:
    """Up to `count` distinct single-edit mutants of `source`, chosen reproducibly from `seed`."""
    sites = mutation_sites(source)
    random.Random(seed).shuffle(sites)
    out: list[str] = []
    for start, end, replacement in sites:
        if len(out) == count:
            break
        mutant = source[:start] + replacement + source[end:]
        if mutant != source and mutant not in out:
            out.append(mutant)
    return out
