"""Deduplication and decontamination of problem sets: exact duplicates after normalizing the question,
near-duplicates by MinHash over word shingles, and n-gram overlap with benchmark prompts (HumanEval).

The first occurrence of a duplicate is kept. `datasketch` is imported only when near-dedup runs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rlcoder.records import Problem

EXACT, NEAR, CONTAMINATED = "exact_duplicate", "near_duplicate", "contaminated"
_WORD = re.compile(r"\w+")


@dataclass
class Removal:
    problem_id: str
    reason: str  # EXACT | NEAR | CONTAMINATED
    match: str  # the kept problem it duplicates, or the benchmark task it overlaps
    similarity: float  # 1.0 for exact; shingle Jaccard for near; fraction of matched n-grams for contaminated


@dataclass
class DedupReport:
    kept: list[Problem] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {EXACT: 0, NEAR: 0, CONTAMINATED: 0}
        for r in self.removed:
            out[r.reason] += 1
        return out


# ---------------------------------------------------------------------------------------------
# Text normalization (pure)


def normalize_text(text: str) -> str:
    """Case, punctuation and whitespace folded away: 'Reverse  the words!' -> 'reverse the words'."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def shingles(text: str, k: int = 3) -> set[str]:
    """Word k-grams of the normalized text (the whole text when it has fewer than k words)."""
    words = normalize_text(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams for decontamination; pure numbers are dropped, since runs of digits from doctest
    examples ("1 0 2 0 3 0") would match between unrelated problems."""
    words = [w for w in normalize_text(text).split() if not w.isdigit()]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


# ---------------------------------------------------------------------------------------------
# The three passes


def find_exact_duplicates(problems: Sequence[Problem]) -> list[Removal]:
    first: dict[str, str] = {}
    removed = []
    for p in problems:
        key = normalize_text(p.question)
        if key in first:
            removed.append(Removal(p.problem_id, EXACT, first[key], 1.0))
        else:
            first[key] = p.problem_id
    return removed


def find_near_duplicates(
    problems: Sequence[Problem],
    *,
    threshold: float = 0.7,
    num_perm: int = 128,
    shingle_words: int = 3,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Removal]:
    """Problems whose question shingles have Jaccard >= threshold with an earlier kept problem.

    MinHash LSH proposes candidates; the exact Jaccard of the shingle sets confirms them, so the result
    does not depend on MinHash's estimation error (only recall does).
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, set[str]] = {}
    removed = []
    for p in problems:
        sh = shingles(p.question, shingle_words)
        mh = MinHash(num_perm=num_perm, seed=seed)
        for s in sh:
            mh.update(s.encode("utf-8"))
        best_id, best_sim = "", 0.0
        for cand in lsh.query(mh):
            sim = jaccard(sh, kept[cand])
            if sim > best_sim:
                best_id, best_sim = cand, sim
        if best_sim >= threshold:
            removed.append(Removal(p.problem_id, NEAR, best_id, round(best_sim, 4)))
        elif p.problem_id not in kept:
            kept[p.problem_id] = sh
            lsh.insert(p.problem_id, mh)
        if progress is not None:
            progress(1)
    return removed


def find_contamination(
    problems: Sequence[Problem],
    references: Mapping[str, str],
    *,
    n: int = 10,
    fields: Iterable[str] = ("question",),
) -> list[Removal]:
    """Problems sharing at least one word n-gram with a reference text (e.g. a HumanEval prompt).

    `references` maps a benchmark task id to its text; `fields` are the Problem fields checked.
    """
    index: dict[tuple[str, ...], str] = {}
    for task_id, text in references.items():
        for gram in word_ngrams(text, n):
            index.setdefault(gram, task_id)
    fields = tuple(fields)
    removed = []
    for p in problems:
        grams = set().union(*(word_ngrams(getattr(p, f), n) for f in fields))
        hits: dict[str, int] = {}
        for gram in grams:
            if gram in index:
                hits[index[gram]] = hits.get(index[gram], 0) + 1
        if hits:
            task_id, count = max(hits.items(), key=lambda kv: (kv[1], kv[0]))
            removed.append(Removal(p.problem_id, CONTAMINATED, task_id, round(count / len(grams), 4)))
    return removed


def dedup_problems(
    problems: Sequence[Problem],
    *,
    near_threshold: float = 0.7,
    num_perm: int = 128,
    shingle_words: int = 3,
    references: Mapping[str, str] | None = None,
    ngram: int = 10,
    progress: Callable[[int], None] | None = None,
) -> DedupReport:
    """Exact dedup, then near dedup, then decontamination against `references` (skipped when None).

    Each removed problem is reported once, under the first pass that removed it.
    """
    report = DedupReport()
    remaining = list(problems)

    def drop(removed: list[Removal]) -> None:
        nonlocal remaining
        gone = {r.problem_id for r in removed}
        remaining = [p for p in remaining if p.problem_id not in gone]
        report.removed.extend(removed)

    drop(find_exact_duplicates(remaining))
    near = find_near_duplicates(
        remaining, threshold=near_threshold, num_perm=num_perm, shingle_words=shingle_words, progress=progress
    )
    drop(near)
    if references is not None:
        drop(find_contamination(remaining, references, n=ngram))
    report.kept = remaining
    return report
