"""Client of the reward service: batches items into requests, bounds concurrency, retries only on
transport errors and 429/503 (honouring Retry-After), and turns a service that cannot answer into
infra_error verdicts (dropped by the learner), never into a 0 reward. Never raises for service faults.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import weakref
from collections.abc import Sequence
from functools import cache
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
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def score(self, items: Sequence[ScoreItem]) -> list[Verdict]:
        if not items:
            return []
        http = self._http()
        semaphore = asyncio.Semaphore(self.max_concurrency)
        chunks = [list(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]

        async def run(chunk: list[ScoreItem]) -> list[Verdict]:
            async with semaphore:
                return await self._post(http, chunk)

        results = await asyncio.gather(*(run(c) for c in chunks))
        return [v for chunk in results for v in chunk]

    def score_sync(self, items: Sequence[ScoreItem]) -> list[Verdict]:
        """Blocking variant. Runs on the client's own event loop thread, so connections are kept
        between calls; safe to call from inside another running event loop."""
        loop = self._background_loop()
        return asyncio.run_coroutine_threadsafe(self.score(items), loop).result()

    def close(self) -> None:
        """Close the connections of the blocking API (async users: `await aclose()` in their loop)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if loop is None or thread is None:
            return
        client = self._clients.get(loop)
        if client is not None:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _http(self) -> httpx.AsyncClient:
        """One connection pool per event loop (httpx pools cannot cross loops)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            limits = httpx.Limits(
                max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
            )
            client = httpx.AsyncClient(timeout=self.request_timeout_s, limits=limits, verify=_ssl_context())
            self._clients[loop] = client
        return client

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, daemon=True, name="reward-client")
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def healthz(self) -> dict[str, Any]:
        response = await self._http().get(f"{self.url}/healthz", timeout=10.0)
        result: dict[str, Any] = response.json()
        return result

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


@cache
def _ssl_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs tens of ms per client otherwise."""
    return httpx.create_ssl_context()
