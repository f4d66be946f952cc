"""Problem loading and writing: KodCode-format rows (bundled YAML, local parquet/jsonl/arrow, a hub id,
HumanEval) mapped to `Problem` records and back; difficulty labels from pass rates. The sandbox side
(score items, self-verification) is in verification.py.

`datasets` is imported inside the functions that need it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from rlcoder.records import FunctionInfo, Problem, TestKind

BUNDLED = "bundled"
EVAL_EVERY = 5  # bundled split: the 5th, 10th, ... problem of each file (sorted by question_id) is eval
REQUIRED_COLUMNS = ("question_id", "question", "solution", "test", "test_info")
STYLES = ("instruct", "complete")
DIFFICULTIES = ("easy", "medium", "hard")
_LOCAL_SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".arrow": "arrow"}


class ProblemLoadError(ValueError):
    """A source cannot be read, or one of its rows is not a valid KodCode-format problem."""


# ---------------------------------------------------------------------------------------------
# Rows <-> records (pure)


def row_to_problem(row: Mapping[str, Any], index: int, source: str = "") -> Problem:
    """One KodCode-V1 row as a Problem. ProblemLoadError names the row index and the column."""
    qid = row.get("question_id")

    def bad(column: str, why: str) -> ProblemLoadError:
        where = f"{source}: " if source else ""
        ident = f" ({qid})" if isinstance(qid, str) and qid else ""
        return ProblemLoadError(f"{where}row {index}{ident}: column '{column}' {why}")

    for column in REQUIRED_COLUMNS:
        if column not in row or row[column] is None:
            raise bad(column, "is missing")
    for column in ("question_id", "question", "solution", "test"):
        if not isinstance(row[column], str) or not row[column].strip():
            raise bad(column, f"must be a non-empty string, got {_show(row[column])}")
    style = row.get("style") or "instruct"
    if style not in STYLES:
        raise bad("style", f"must be one of {', '.join(STYLES)}, got {style!r}")
    return Problem(
        problem_id=row["question_id"],
        question=row["question"],
        solution=row["solution"],
        test=row["test"],
        test_info=_test_info(row["test_info"], bad),
        test_kind=_test_kind(row.get("test_kind"), bad),
        style=style,
        difficulty=_difficulty(row, bad),
        pass_rate=_pass_rate(row, bad),
        pass_sequence=_pass_sequence(row, bad),
        reference_runtime_s=_runtime(row, bad),
        subset=_optional_str(row, "subset", bad),
        source=source,
    )


def problem_to_row(problem: Problem) -> dict[str, Any]:
    """The inverse of `row_to_problem`: a KodCode-V1-shaped row (for writing parquet/jsonl)."""
    return {
        "question_id": problem.problem_id,
        "question": problem.question,
        "solution": problem.solution,
        "test": problem.test,
        "test_info": [
            {
                "function_name": f.function_name,
                "parameter_list": f.parameter_list,
                "function_declaration": f.function_declaration,
                "docstring": f.docstring,
            }
            for f in problem.test_info
        ],
        "style": problem.style,
        "subset": problem.subset,
        "gpt_difficulty": problem.difficulty,
        "gpt_pass_percentage": problem.pass_rate,
        "gpt_pass_sequence": list(problem.pass_sequence),
        "reference_runtime_s": problem.reference_runtime_s,
        "test_kind": problem.test_kind.value,
    }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _test_info(value: Any, bad: Callable[[str, str], ProblemLoadError]) -> list[FunctionInfo]:
    # parquet hands back numpy arrays or lists; a single dict is tolerated as a one-entry list
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise bad("test_info", f"must be a list of {{function_name, ...}} objects, got {_show(value)}")
    infos = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise bad("test_info", f"entry {i} must be an object, got {_show(entry)}")
        name = entry.get("function_name")
        if not isinstance(name, str) or not name.strip():
            raise bad("test_info", f"entry {i} needs a non-empty function_name, got {_show(name)}")
        fields = {}
        for key in ("parameter_list", "function_declaration", "docstring"):
            part = entry.get(key)
            if part is not None and not isinstance(part, str):
                raise bad("test_info", f"entry {i} field {key} must be a string, got {_show(part)}")
            fields[key] = part or ""
        infos.append(FunctionInfo(function_name=name.strip(), **fields))
    return infos


def _test_kind(value: Any, bad: Callable[[str, str], ProblemLoadError]) -> TestKind:
    if value is None or value == "":
        return TestKind.PYTEST  # KodCode's own tests are pytest files
    try:
        return TestKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in TestKind)
        raise bad("test_kind", f"must be one of {allowed}, got {_show(value)}") from None


def _difficulty(row: Mapping[str, Any], bad: Callable[[str, str], ProblemLoadError]) -> str:
    label = row.get("gpt_difficulty")
    if label:
        if label not in DIFFICULTIES:
            raise bad("gpt_difficulty", f"must be one of {', '.join(DIFFICULTIES)}, got {_show(label)}")
        return str(label)
    rate = _pass_rate(row, bad)
    return "" if rate is None else difficulty_from_pass_rate(rate)


def _pass_rate(row: Mapping[str, Any], bad: Callable[[str, str], ProblemLoadError]) -> float | None:
    rate = row.get("gpt_pass_percentage")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise bad("gpt_pass_percentage", f"must be a number in [0, 1], got {_show(rate)}")
    return float(rate)


def _runtime(row: Mapping[str, Any], bad: Callable[[str, str], ProblemLoadError]) -> float | None:
    value = row.get("reference_runtime_s")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise bad("reference_runtime_s", f"must be a number of seconds >= 0, got {_show(value)}")
    return float(value)


def _pass_sequence(row: Mapping[str, Any], bad: Callable[[str, str], ProblemLoadError]) -> list[int]:
    seq = row.get("gpt_pass_sequence")
    if seq is None:
        return []
    if not isinstance(seq, (list, tuple)) or any(s not in (0, 1) or isinstance(s, float) for s in seq):
        raise bad("gpt_pass_sequence", f"must be a list of 0/1, got {_show(seq)}")
    return [int(s) for s in seq]


def _optional_str(row: Mapping[str, Any], column: str, bad: Callable[[str, str], ProblemLoadError]) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad(column, f"must be a string, got {_show(value)}")
    return value


def difficulty_from_pass_rate(rate: float | Fraction) -> str:
    """KodCode's labels from a pass rate over N samples: easy > 2/3, hard < 1/3, medium between."""
    if rate > Fraction(2, 3):
        return "easy"
    if rate < Fraction(1, 3):
        return "hard"
    return "medium"


def label_difficulty(passed: int, samples: int) -> str:
    """The label for `passed` passing samples out of `samples` (exact: 2 of 3 is medium)."""
    if samples <= 0 or not 0 <= passed <= samples:
        raise ValueError(f"need 0 <= passed <= samples and samples > 0, got {passed}/{samples}")
    return difficulty_from_pass_rate(Fraction(passed, samples))


# ---------------------------------------------------------------------------------------------
# Sources


def load_problems(
    source: str, limit: int | None = None, streaming: bool = False
) -> list[Problem] | Iterator[Problem]:
    """Problems from `source`; a list, or a lazy iterator when `streaming`.

    source: "bundled" (all), "bundled:train", "bundled:eval", "humaneval", a local path
    (.parquet, .jsonl, .json, .arrow, or a directory written by `Dataset.save_to_disk` or holding
    parquet/jsonl files), or a hub id such as "KodCode/KodCode-V1" (optionally "<id>:<split>").
    """
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    # A limit streams hub datasets, so the first N rows do not cost the whole download.
    problems = _iter_source(source, streaming or limit is not None)
    if limit is not None:
        problems = itertools.islice(problems, limit)
    return problems if streaming else list(problems)


def _iter_source(source: str, streaming: bool) -> Iterator[Problem]:
    if source == BUNDLED or source.startswith(BUNDLED + ":"):
        split = source.partition(":")[2] or "all"
        return iter(bundled_problems(split))
    if source == "humaneval":
        from rlcoder.data.humaneval import load_humaneval

        return iter(load_humaneval())
    path = Path(source).expanduser()
    return _iter_rows(open_rows(source, streaming), str(path) if path.exists() else source)


def open_rows(source: str, streaming: bool = False) -> Iterable[Mapping[str, Any]]:
    """The raw rows of a local file or directory (parquet, jsonl, json, arrow, save_to_disk) or of a
    hub dataset ("<id>" or "<id>:<split>"). ProblemLoadError when the source cannot be read."""
    path = Path(source).expanduser()
    if path.exists():
        return _open_local(path, streaming)
    if source.endswith(tuple(_LOCAL_SUFFIXES)) or source.startswith((".", "/", "~")):
        raise ProblemLoadError(f"{source}: no such file or directory")
    return _open_hub(source, streaming)


def _iter_rows(rows: Iterable[Mapping[str, Any]], source: str) -> Iterator[Problem]:
    for index, row in enumerate(rows):
        yield row_to_problem(row, index, source)


def _open_local(path: Path, streaming: bool) -> Iterable[Mapping[str, Any]]:
    import datasets

    try:
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else next(iter(ds.values()))
            return ds.to_iterable_dataset() if streaming else ds
        if path.is_dir():
            return datasets.load_dataset(str(path), split="train", streaming=streaming)
        if path.suffix == ".jsonl":
            rows = _jsonl_rows(path)
            return rows if streaming else list(rows)
        builder = _LOCAL_SUFFIXES.get(path.suffix)
        if builder is None:
            known = ", ".join(_LOCAL_SUFFIXES)
            raise ProblemLoadError(f"{path}: unknown file type {path.suffix!r} (known: {known})")
        return datasets.load_dataset(builder, data_files=str(path), split="train", streaming=streaming)
    except ProblemLoadError:
        raise
    except Exception as exc:  # datasets raises many types; the caller needs the path and the cause
        raise ProblemLoadError(f"{path}: cannot read as a dataset: {type(exc).__name__}: {exc}") from exc


def _jsonl_rows(path: Path) -> Iterator[Mapping[str, Any]]:
    """The objects of a JSON-lines file, read here rather than by `datasets`, so a corrupt line is
    named by its number (datasets says only DatasetGenerationError) and an empty file has no rows."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                torn = "" if raw.endswith(b"\n") else ", truncated"
                raise ProblemLoadError(f"{path}:{lineno}: not valid JSON ({exc}{torn})") from None
            if not isinstance(row, dict):
                raise ProblemLoadError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row


def _open_hub(source: str, streaming: bool) -> Iterable[Mapping[str, Any]]:
    import datasets

    repo, _, split = source.partition(":")
    try:
        return datasets.load_dataset(repo, split=split or "train", streaming=streaming)
    except Exception as exc:
        raise ProblemLoadError(
            f"{source}: cannot load from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Without network access use 'bundled', 'humaneval' or a local parquet/jsonl path; "
            "a hub dataset loads offline only if it is in the datasets cache (HF_DATASETS_OFFLINE=1)."
        ) from exc


def bundled_rows() -> list[tuple[str, list[dict[str, Any]]]]:
    """(file name, rows) of every bundled YAML file, in file-name order."""
    import yaml

    folder = resources.files("rlcoder").joinpath("data", "bundled")
    if not folder.is_dir():
        raise ProblemLoadError("the bundled problem set is missing: no rlcoder/data/bundled in the package")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            rows = yaml.safe_load(entry.read_text(encoding="utf-8")) or []
            if not isinstance(rows, list):
                raise ProblemLoadError(f"bundled/{entry.name}: the top level must be a list of problems")
            out.append((entry.name, rows))
    return out


def bundled_problems(split: str = "all") -> list[Problem]:
    """The bundled set, or its "train"/"eval" split.

    The split is deterministic: within each file, problems sorted by question_id, every EVAL_EVERY-th
    one (positions 4, 9, 14, ... counting from 0) is eval, the rest train. Each file is one subset, so
    eval covers every subset in the same proportion.
    """
    if split not in ("all", "train", "eval"):
        raise ProblemLoadError(f"bundled split must be train or eval, got {split!r}")
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name, rows in bundled_rows():
        parsed = [row_to_problem(row, i, f"bundled/{name}") for i, row in enumerate(rows)]
        for pos, problem in enumerate(sorted(parsed, key=lambda p: p.problem_id)):
            if problem.problem_id in seen:
                raise ProblemLoadError(
                    f"bundled/{name}: question_id {problem.problem_id} is also in {seen[problem.problem_id]}"
                )
            seen[problem.problem_id] = name
            problem.source = BUNDLED
            is_eval = pos % EVAL_EVERY == EVAL_EVERY - 1
            if split == "all" or (split == "eval") == is_eval:
                problems.append(problem)
    return problems


def write_problems(problems: Sequence[Problem], path: Path) -> None:
    """Problems as KodCode rows: parquet when the path ends in .parquet, else JSON lines."""
    rows = [problem_to_row(p) for p in problems]
    if path.suffix == ".parquet":
        import datasets

        datasets.Dataset.from_list(rows).to_parquet(str(path))
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
