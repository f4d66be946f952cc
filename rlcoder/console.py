"""What rlcoder prints: log lines to stderr, one progress line per RL step, and plain-text tables.
Library code hands lines to a `Log` callable; only command handlers decide where they go."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

Log = Callable[[str], None]


def log_stderr(line: str) -> None:
    """The default Log: one line to stderr, flushed (progress stays apart from results on stdout)."""
    print(line, file=sys.stderr, flush=True)


def pct(x: float) -> str:
    """A rate as a percentage; 'n/a' when nothing was measured (NaN)."""
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def progress_line(algo: str, row: dict[str, Any], max_steps: int) -> str:
    """One RL step: reward, pass rate, loss, rollout throughput and seconds per phase."""
    times = " ".join(
        f"{k[5:-2]} {row[k]:.1f}s"
        for k in ("time/rollout_s", "time/reward_s", "time/update_s", "time/sync_s")
        if k in row
    )
    return (
        f"[{algo}] step {row['step']}/{max_steps} reward {row.get('reward', float('nan')):.3f} "
        f"pass {pct(row['pass_rate'])} loss {row.get('loss', float('nan')):.4f} "
        f"tok/s {row['rollout_tokens_per_s']:.0f} | {times}"
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
