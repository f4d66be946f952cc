"""Client of the reward service: batches items into requests, bounds concurrency, retries only on
transport errors and 429/503 (honouring Retry-After), and turns a service that cannot answer into
infra_error verdicts (dropped by the learner), never into a 0 reward. Never raises for service faults.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from typing import Any

import httpx

from reward.verdicts import infra_error
from rlcoder.records import RecordError, ScoreItem, Verdict, from_dict, to_dict

_RETRY_CODES = (429, 503)
_MAX_BACKOFF_S = 30.0


class RewardClient:
    """`await client.score(items)` or `client.score_sync(items)`: verdicts index-aligned with items."""

    def __init__(
        self,
        url: str,
        max_concurrency: int = 8,
        retries: int = 3,
        request_timeout_s: float = 120.0,
        batch_size: int = 64,
        backoff_s: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.request_timeout_s = request_timeout_s
        self.batch_size = max(1, batch_size)
        self.backoff_s = backoff_s
        self.stats = {"requests": 0, "retries": 0, "infra_errors": 0}

    async def score(self, items: Sequence[ScoreItem]) -> list[Verdict]:
        if not items:
            return []
        semaphore = asyncio.Semaphore(self.max_concurrency)
        chunks = [list(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        limits = httpx.Limits(
            max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
        )
        async with httpx.AsyncClient(timeout=self.request_timeout_s, limits=limits) as http:

            async def run(chunk: list[ScoreItem]) -> list[Verdict]:
                async with semaphore:
                    return await self._post(http, chunk)

            results = await asyncio.gather(*(run(c) for c in chunks))
        return [v for chunk in results for v in chunk]

    def score_sync(self, items: Sequence[ScoreItem]) -> list[Verdict]:
        """Blocking variant; safe to call from inside a running event loop (uses a thread then)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.score(items))
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(result=asyncio.run(self.score(items))))
        thread.start()
        thread.join()
        return box["result"]  # type: ignore[no-any-return]

    async def healthz(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.get(f"{self.url}/healthz")
            return response.json()  # type: ignore[no-any-return]

    async def _post(self, http: httpx.AsyncClient, chunk: list[ScoreItem]) -> list[Verdict]:
        payload = {"items": [to_dict(item) for item in chunk]}
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            self.stats["requests"] += 1
            try:
                response = await http.post(f"{self.url}/v1/score", json=payload)
            except httpx.TransportError as exc:  # connect, read, write, timeouts, dropped connection
                last_problem = f"transport error: {type(exc).__name__}: {exc}"
                await asyncio.sleep(self._backoff(attempt))
                continue
            if response.status_code in _RETRY_CODES:
                last_problem = f"HTTP {response.status_code}: {_error_text(response)}"
                await asyncio.sleep(self._retry_after(response, attempt))
                continue
            if response.status_code != 200:
                # A request the service refuses is not a transport fault: retrying will not help.
                return self._infra(chunk, f"HTTP {response.status_code}: {_error_text(response)}")
            return self._parse(response, chunk)
        return self._infra(
            chunk, f"reward service unavailable after {self.retries + 1} attempts: {last_problem}"
        )

    def _parse(self, response: httpx.Response, chunk: list[ScoreItem]) -> list[Verdict]:
        try:
            raw = response.json()["verdicts"]
            verdicts = [from_dict(Verdict, v) for v in raw]
        except (ValueError, KeyError, TypeError, RecordError) as exc:
            return self._infra(chunk, f"unreadable response: {exc}")
        if len(verdicts) != len(chunk):
            return self._infra(chunk, f"response has {len(verdicts)} verdicts for {len(chunk)} items")
        return verdicts

    def _infra(self, chunk: list[ScoreItem], detail: str) -> list[Verdict]:
        self.stats["infra_errors"] += len(chunk)
        return [infra_error(detail, item.item_id) for item in chunk]

    def _backoff(self, attempt: int) -> float:
        return min(_MAX_BACKOFF_S, self.backoff_s * (2**attempt)) * (0.5 + random.random())

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        value = response.headers.get("retry-after", "")
        try:
            return min(_MAX_BACKOFF_S, max(0.0, float(value)))
        except ValueError:
            return self._backoff(attempt)


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:300]
    except ValueError:
        return response.text[:300]
