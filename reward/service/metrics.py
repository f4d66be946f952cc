"""Service metrics in the Prometheus text format: counters, gauges and histograms, no dependency.
Thread-safe; the server updates them, GET /metrics renders them.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import defaultdict

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # last: +Inf only
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1


class Metrics:
    """The reward service's metrics. `render()` gives the /metrics body."""

    def __init__(self, throughput_window_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self.items: defaultdict[str, int] = defaultdict(int)  # by verdict status
        self.judges: defaultdict[str, int] = defaultdict(int)  # by the judge that decided
        self.requests: defaultdict[int, int] = defaultdict(int)  # by HTTP status code
        self.rejected: defaultdict[str, int] = defaultdict(int)  # by reason
        self.cache_hits = 0
        self.item_seconds = Histogram()
        self.request_seconds = Histogram()
        self._window_s = throughput_window_s
        self._recent: list[float] = []  # completion times of items in the window

    def item_done(self, status: str, duration_s: float, cached: bool, judge: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            self.items[status] += 1
            if judge:
                self.judges[judge] += 1
            if cached:
                self.cache_hits += 1
            else:
                self.item_seconds.observe(duration_s)
            self._recent.append(now)
            if len(self._recent) > 100_000 or (self._recent and self._recent[0] < now - self._window_s):
                cut = bisect.bisect_left(self._recent, now - self._window_s)
                del self._recent[:cut]

    def request_done(self, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[code] += 1
            self.request_seconds.observe(seconds)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def throughput(self) -> float:
        """Items per second over the recent window."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._recent if t >= now - self._window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-3)
        return len(recent) / span

    def render(self, in_flight: int, workers: int, restarts: int, alive: bool) -> str:
        with self._lock:
            lines = [
                *_family(
                    "reward_items_total",
                    "counter",
                    "scored items by verdict status",
                    {f'status="{k}"': v for k, v in sorted(self.items.items())},
                ),
                *_family(
                    "reward_judged_total",
                    "counter",
                    "scored items by the judge that decided (isolated, in_process, pytest)",
                    {f'judge="{k}"': v for k, v in sorted(self.judges.items())},
                ),
                *_family(
                    "reward_requests_total",
                    "counter",
                    "HTTP score requests by response code",
                    {f'code="{k}"': v for k, v in sorted(self.requests.items())},
                ),
                *_family(
                    "reward_rejected_total",
                    "counter",
                    "requests refused (backpressure, size, validation)",
                    {f'reason="{k}"': v for k, v in sorted(self.rejected.items())},
                ),
                *_family(
                    "reward_cache_hits_total",
                    "counter",
                    "items answered from the result cache",
                    {"": self.cache_hits},
                ),
                *_histogram("reward_execution_seconds", "sandboxed run time per item", self.item_seconds),
                *_histogram("reward_request_seconds", "latency of score requests", self.request_seconds),
            ]
        lines += _family("reward_queue_depth", "gauge", "items submitted and not finished", {"": in_flight})
        lines += _family("reward_workers", "gauge", "concurrent sandboxed executions", {"": workers})
        lines += _family(
            "reward_throughput_items_per_second",
            "gauge",
            "items finished per second (60 s window)",
            {"": round(self.throughput(), 3)},
        )
        lines += _family(
            "reward_forkserver_restarts_total",
            "counter",
            "fork server restarts after a crash",
            {"": restarts},
        )
        lines += _family(
            "reward_forkserver_up", "gauge", "1 when the sandbox fork server is running", {"": int(alive)}
        )
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, samples: dict[str, float]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples.items():
        lines.append(f"{name}{{{labels}}} {_num(value)}" if labels else f"{name} {_num(value)}")
    return lines


def _histogram(name: str, help_text: str, hist: Histogram) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    cumulative = 0
    for bound, count in zip(hist.buckets, hist.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {hist.n}')
    lines.append(f"{name}_sum {_num(hist.total)}")
    lines.append(f"{name}_count {hist.n}")
    return lines


def _num(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    return repr(value) if isinstance(value, float) else str(value)
