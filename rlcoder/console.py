"""What rlcoder prints: log lines to stderr, one progress line per RL step, and plain-text tables.
Library code hands lines to a `Log` callable; only command handlers decide where they go. Also the
quiet console: the known-harmless warnings and progress bars of the libraries we use, silenced at their
source (environment variables that child processes such as Ray workers inherit, warning filters)."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

Log = Callable[[str], None]


def log_stderr(line: str) -> None:
    """The default Log: one line to stderr, flushed (progress stays apart from results on stdout)."""
    print(line, file=sys.stderr, flush=True)


def pct(x: float) -> str:
    """A rate as a percentage; 'n/a' when nothing was measured (NaN)."""
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def progress_line(algo: str, row: dict[str, Any], max_steps: int, left: str = "") -> str:
    """One RL step: reward, pass rate, loss, rollout throughput, seconds per phase and the stage's
    ETA (`left`, from `eta`)."""
    times = " ".join(
        f"{k[5:-2]} {row[k]:.1f}s"
        for k in ("time/rollout_s", "time/reward_s", "time/update_s", "time/sync_s")
        if k in row
    )
    return (
        f"[{algo}] step {row['step']}/{max_steps} reward {row.get('reward', float('nan')):.3f} "
        f"pass {pct(row['pass_rate'])} loss {row.get('loss', float('nan')):.4f} "
        f"tok/s {row['rollout_tokens_per_s']:.0f} | {times}" + (f" | {left}" if left else "")
    )


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


# ---------------------------------------------------------------------------------------------
# The quiet console

VERBOSE_ENV = "RLCODER_VERBOSE"
# Set where unset: each silences one class of harmless output (a user's own setting wins).
QUIET_ENV = {
    "TRL_EXPERIMENTAL_SILENCE": "1",  # "You are using 'rollout_func', which is an experimental feature"
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" / "Writing model shards" bars
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' "Generating train split" bars
    "TRANSFORMERS_VERBOSITY": "error",
    "VLLM_LOGGING_LEVEL": "ERROR",  # vLLM: config dump, "Triton is installed, but ...", LD_PRELOAD hints
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # torch's "NUMA binding: Using MEMBIND policy" (a C++ warning)
    "TOKENIZERS_PARALLELISM": "false",
    # Python warnings in this process and in every child (Ray workers, the reward service)
    "PYTHONWARNINGS": ",".join(
        [
            "ignore::FutureWarning",
            "ignore::DeprecationWarning",
            "ignore:TRL currently supports vLLM versions",
        ]
    ),
}
QUIET_WARNINGS = (  # (message regex, category) filtered in this process
    ("TRL currently supports vLLM versions", UserWarning),
    (".*'rollout_func', which is an experimental feature", UserWarning),
    ("", FutureWarning),
    ("", DeprecationWarning),
)


def quiet_console(verbose: bool) -> None:
    """Silence the known-harmless warnings and bars before any library is imported (`--verbose`:
    show everything, and say so to child processes)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for message, category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def is_verbose() -> bool:
    """Whether the user asked for everything (--verbose): libraries' own logging levels follow it."""
    return os.environ.get(VERBOSE_ENV) == "1"


def one_line_error(exc: BaseException) -> str:
    """An unexpected error as one line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:300] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def duration(seconds: float) -> str:
    """Seconds as 42s, 3m05s or 2h07m."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(elapsed_s: float, done: int, total: int) -> str:
    """'eta 3m05s' from the mean pace so far; '' before the first unit of work or after the last."""
    if done <= 0 or done >= total:
        return ""
    return f"eta {duration(elapsed_s / done * (total - done))}"


def sft_progress_line(
    stage: int, n_stages: int, step: int, max_steps: int, loss: float, lr: float, elapsed_s: float
) -> str:
    """One SFT logging interval: the mean loss over it, the learning rate, time so far and the ETA."""
    left = eta(elapsed_s, step, max_steps)
    return (
        f"sft stage {stage}/{n_stages} step {step}/{max_steps} loss {loss:.4f} lr {lr:.2e} "
        f"{duration(elapsed_s)}" + (f", {left}" if left else "")
    )
