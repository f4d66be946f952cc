"""Summaries of scored rollouts: pass rate per step, difficulty and subset, the verdict histogram and
unbiased pass@k; as a terminal table and as a self-contained HTML page with inline SVG charts.

Pure Python (no plotting library): the same summary feeds `rlcoder replay`, `report` and `eval`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlcoder.console import format_table, pct
from rlcoder.eval.pass_at_k import PassCounts
from rlcoder.records import UNSCORED, Problem, ScoredGroup, VerdictStatus, pass_rate

DEFAULT_KS = (1, 2, 4, 8, 16)
UNKNOWN = "-"  # difficulty or subset not recorded, or problem not found


@dataclass
class Rate:
    """Passing over scored (infra errors are neither)."""

    passed: int = 0
    scored: int = 0

    @property
    def value(self) -> float:
        return pass_rate(self.passed, self.scored)


@dataclass
class Summary:
    completions: int = 0
    groups: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in VerdictStatus})
    by_step: dict[int, Rate] = field(default_factory=dict)
    by_difficulty: dict[str, Rate] = field(default_factory=dict)
    by_subset: dict[str, Rate] = field(default_factory=dict)
    pass_at: dict[int, tuple[float, int]] = field(default_factory=dict)  # k -> (value, units with n >= k)
    pass_at_unit: str = "problem"  # what pass@k averages over: "problem" or "group"

    @property
    def overall(self) -> Rate:
        unscored = sum(self.verdicts[s.value] for s in UNSCORED)
        return Rate(self.verdicts["pass"], self.completions - unscored)


def parse_ks(text: str) -> list[int]:
    """'1,2,8' -> [1, 2, 8]; ValueError on anything else."""
    ks = sorted({int(part) for part in text.split(",") if part.strip()})
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be a comma-separated list of positive integers, got {text!r}")
    return ks


def summarize(
    groups: Iterable[ScoredGroup],
    problems: Mapping[str, Problem],
    ks: Sequence[int] = DEFAULT_KS,
    by: Literal["problem", "group"] = "group",
) -> Summary:
    """pass@k per `by` (PassCounts.from_groups); groups without verdicts are left out."""
    groups = [g for g in groups if g.verdicts]
    out = Summary(groups=len(groups), pass_at_unit=by)
    for g in groups:
        problem = problems.get(g.problem_id)
        rates = (
            out.by_step.setdefault(g.step, Rate()),
            out.by_difficulty.setdefault((problem.difficulty if problem else "") or UNKNOWN, Rate()),
            out.by_subset.setdefault((problem.subset if problem else "") or UNKNOWN, Rate()),
        )
        for v in g.verdicts:
            out.completions += 1
            out.verdicts[v.status.value] += 1
            if v.status in UNSCORED:
                continue
            for rate in rates:
                rate.scored += 1
                rate.passed += v.status is VerdictStatus.PASS
    out.pass_at = PassCounts.from_groups(groups, by=by).pass_at_ks(ks)
    return out


# ---------------------------------------------------------------------------------------------
# Terminal


def format_summary(s: Summary) -> str:
    overall = s.overall
    parts = [
        f"{s.completions} completions in {s.groups} groups: pass rate {pct(overall.value)} "
        f"({overall.passed}/{overall.scored} scored, {s.verdicts['infra_error']} infra errors and "
        f"{s.verdicts['bad_test']} bad tests left out)",
        format_table([(k, n) for k, n in s.verdicts.items()], ("verdict", "completions")),
        format_table(
            [(f"pass@{k}", f"{v:.3f}", n) for k, (v, n) in s.pass_at.items()],
            ("unbiased", "value", f"{s.pass_at_unit}s"),
        ),
    ]
    for title, rates in (("difficulty", s.by_difficulty), ("subset", s.by_subset), ("step", s.by_step)):
        if len(rates) > 1 or title == "step":
            rows = [(k, r.scored, r.passed, pct(r.value)) for k, r in sorted(rates.items(), key=_sort_key)]
            parts.append(format_table(rows, (title, "scored", "passed", "pass rate")))
    return "\n\n".join(parts)


def _sort_key(item: tuple[Any, Rate]) -> tuple[int, Any]:
    order = {"easy": 0, "medium": 1, "hard": 2}
    key = item[0]
    return (order.get(key, 3), key) if isinstance(key, str) else (0, key)


# ---------------------------------------------------------------------------------------------
# HTML with inline SVG


def html_report(
    title: str,
    summary: Summary,
    sections: Sequence[tuple[str, str]] = (),
    extra_charts: Sequence[str] = (),
) -> str:
    """A standalone page: the charts (then `extra_charts`, SVG strings), the tables, and extra
    (heading, preformatted text) sections."""
    s = summary
    charts = [
        line_chart("Pass rate per step", [(k, r.value) for k, r in sorted(s.by_step.items())]),
        bar_chart("Verdicts", [(k, float(n)) for k, n in s.verdicts.items()], fmt="{:.0f}"),
        bar_chart(
            f"Unbiased pass@k (mean over {s.pass_at_unit}s)",
            [(f"k={k}", v) for k, (v, _) in s.pass_at.items()],
        ),
        bar_chart("Pass rate per difficulty", _rates(s.by_difficulty)),
        bar_chart("Pass rate per subset", _rates(s.by_subset)),
        *extra_charts,
    ]
    body = "\n".join(f'<div class="chart">{c}</div>' for c in charts)
    extra = "\n".join(f"<h2>{html.escape(h)}</h2><pre>{html.escape(t)}</pre>" for h, t in sections)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}.chart{display:inline-block;margin:1em}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<h2>Tables</h2><pre>{html.escape(format_summary(s))}</pre>"
        f"{extra}</body></html>\n"
    )


def _rates(rates: Mapping[Any, Rate]) -> list[tuple[str, float]]:
    return [(str(k), r.value) for k, r in sorted(rates.items(), key=_sort_key)]


_W, _H, _PAD = 420, 220, 40


def bar_chart(title: str, bars: Sequence[tuple[str, float]], fmt: str = "{:.0%}") -> str:
    """Vertical bars scaled to the largest value (to 1.0 for fractions)."""
    values = [v for _, v in bars if not math.isnan(v)]
    top = 1.0 if fmt.endswith("%}") else max([*values, 1.0])  # fractions on a 0..1 scale
    width = (_W - 2 * _PAD) / max(len(bars), 1)
    parts = []
    for i, (label, v) in enumerate(bars):
        x = _PAD + i * width
        h = 0.0 if math.isnan(v) else (_H - 2 * _PAD) * v / top
        y = _H - _PAD - h
        shown = "n/a" if math.isnan(v) else fmt.format(v)
        parts.append(
            f'<rect x="{x + 4:.1f}" y="{y:.1f}" width="{width - 8:.1f}" height="{h:.1f}" fill="#4a7bd0"/>'
            f'<text x="{x + width / 2:.1f}" y="{y - 4:.1f}" font-size="10" '
            f'text-anchor="middle">{shown}</text>'
            f'<text x="{x + width / 2:.1f}" y="{_H - _PAD + 14:.1f}" font-size="10" '
            f'text-anchor="middle">{html.escape(label[:14])}</text>'
        )
    return _svg(title, "".join(parts))


def line_chart(title: str, points: Sequence[tuple[int, float]]) -> str:
    """A fraction (0..1) against an integer x such as the step."""
    pts = [(x, y) for x, y in points if not math.isnan(y)]
    if not pts:
        return _svg(title, f'<text x="{_PAD}" y="{_H / 2}" font-size="12">no data</text>')
    lo, hi = pts[0][0], max(pts[-1][0], pts[0][0] + 1)

    def xy(x: int, y: float) -> tuple[float, float]:
        return (
            _PAD + (_W - 2 * _PAD) * (x - lo) / (hi - lo),
            _H - _PAD - (_H - 2 * _PAD) * y,
        )

    coords = [xy(x, y) for x, y in pts]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#4a7bd0"/>' for x, y in coords)
    axis = (
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" font-size="10" text-anchor="end">100%</text>'
        f'<text x="{_PAD - 4}" y="{_H - _PAD}" font-size="10" text-anchor="end">0%</text>'
        f'<text x="{_PAD}" y="{_H - _PAD + 14}" font-size="10">{lo}</text>'
        f'<text x="{_W - _PAD}" y="{_H - _PAD + 14}" font-size="10" text-anchor="end">{hi}</text>'
    )
    return _svg(
        title, f'<polyline points="{path}" fill="none" stroke="#4a7bd0" stroke-width="1.5"/>{dots}{axis}'
    )


CURVES = (("loss", "loss"), ("reward", "mean reward"), ("entropy", "entropy (nats/token)"))


def metric_chart(title: str, points: Sequence[tuple[int, float]], y_label: str, x_label: str = "step") -> str:
    """Any metric against the step, scaled to its own range, with labelled axes and their extremes."""
    pts = [(x, y) for x, y in points if isinstance(y, (int, float)) and math.isfinite(y)]
    if not pts:
        return _svg(title, f'<text x="{_PAD}" y="{_H / 2}" font-size="12">no data</text>')
    lo, hi = pts[0][0], max(pts[-1][0], pts[0][0] + 1)
    y_lo, y_hi = min(y for _, y in pts), max(y for _, y in pts)
    y_hi = y_hi if y_hi > y_lo else y_lo + 1.0

    def xy(x: int, y: float) -> tuple[float, float]:
        return (
            _PAD + (_W - 2 * _PAD) * (x - lo) / (hi - lo),
            _H - _PAD - (_H - 2 * _PAD) * (y - y_lo) / (y_hi - y_lo),
        )

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(*p) for p in pts))
    axis = (
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" font-size="10" text-anchor="end">{y_hi:.3g}</text>'
        f'<text x="{_PAD - 4}" y="{_H - _PAD}" font-size="10" text-anchor="end">{y_lo:.3g}</text>'
        f'<text x="{_PAD}" y="{_H - _PAD + 14}" font-size="10">{lo}</text>'
        f'<text x="{_W - _PAD}" y="{_H - _PAD + 14}" font-size="10" text-anchor="end">{hi}</text>'
        f'<text x="{_W / 2}" y="{_H - 8}" font-size="11" text-anchor="middle">{html.escape(x_label)}</text>'
        f'<text x="12" y="{_H / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_H / 2})">{html.escape(y_label)}</text>'
    )
    return _svg(title, f'<polyline points="{path}" fill="none" stroke="#4a7bd0" stroke-width="1.5"/>{axis}')


def training_curves(stage: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Loss, reward and entropy per step of one RL stage's metrics rows (those it logged)."""
    charts = []
    for key, label in CURVES:
        points = [(int(r["step"]), r[key]) for r in rows if key in r and "step" in r]
        if points:
            charts.append(metric_chart(f"{stage}: {label} per step", points, label))
    return charts


def before_after(stage: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, str]:
    """The RL stage's evaluations before and after training: a bar chart and a table."""
    rows = [
        (when, r.get("problems", "-"), r.get("solved", "-"), pct(float(r.get("pass_rate", math.nan))))
        for when, r in (("before RL", before), ("after RL", after))
    ]
    chart = bar_chart(
        f"{stage}: pass rate before and after RL",
        [(when, float(r.get("pass_rate", math.nan))) for when, r in (("before", before), ("after", after))],
    )
    return chart, format_table(rows, ("", "problems", "solved", "pass rate"))


def _svg(title: str, inner: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">'
        f"<title>{html.escape(title)}</title>"
        f'<text x="{_W / 2}" y="16" font-size="13" text-anchor="middle">{html.escape(title)}</text>'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>'
        f"{inner}</svg>"
    )
