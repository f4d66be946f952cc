"""The HTTP service (FastAPI on uvicorn): POST /v1/score, GET /healthz, GET /metrics, with a bounded
queue (429/503 + Retry-After, never an unbounded pile-up), request size limits and validation errors
that name the field. `cmd_serve` is `rlcoder reward serve` and `python -m reward`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from reward.executor import Executor
from reward.service.metrics import Metrics
from reward.service.options import add_serve_args
from reward.verdicts import infra_error
from rlcoder.records import RecordError, ScoreItem, Verdict, from_dict, to_dict

LISTEN_LINE = "reward service listening on"


@dataclass
class ServerSettings:
    workers: int | None = None  # concurrent sandboxed executions (default: cores)
    queue_limit: int | None = None  # items in flight before 429 (default: 512 per worker)
    max_body_bytes: int = 64 << 20
    max_items: int = 8192  # per request
    request_timeout_s: float = 900.0  # a request's items not done by then come back infra_error
    preload: tuple[str, ...] = ()


class _Busy(Exception):
    def __init__(self, status: int, reason: str, retry_after_s: int, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.retry_after_s, self.message = status, reason, retry_after_s, message


def create_app(settings: ServerSettings | None = None, executor: Executor | None = None) -> FastAPI:
    """The app; it starts (and at shutdown closes) its own executor unless one is given."""
    settings = settings or ServerSettings()
    owned = executor is None
    ex = executor or Executor(workers=settings.workers)
    queue_limit = settings.queue_limit or 512 * ex.workers
    metrics = Metrics()
    in_flight = [0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(ex.start)
        yield
        if owned:
            await asyncio.to_thread(ex.close)

    app = FastAPI(title="rlcoder reward service", lifespan=lifespan)

    @app.post("/v1/score")
    async def score(request: Request) -> JSONResponse:
        started = time.monotonic()
        try:
            items = await _parse_items(request, settings)
            if not ex.alive:  # the fork server died: restart it off the event loop (takes seconds)
                await asyncio.to_thread(_restart, ex)
            _admit(ex, len(items), in_flight[0], queue_limit, metrics)
        except _Busy as busy:
            metrics.reject(busy.reason)
            metrics.request_done(busy.status, time.monotonic() - started)
            headers = {"Retry-After": str(busy.retry_after_s)} if busy.retry_after_s else {}
            return JSONResponse({"error": busy.message}, status_code=busy.status, headers=headers)
        in_flight[0] += len(items)
        try:
            verdicts = await _score_items(ex, items, settings.request_timeout_s)
        finally:
            in_flight[0] -= len(items)
        for v in verdicts:
            metrics.item_done(v.status.value, v.duration_ms / 1000.0, v.cached, v.judge)
        metrics.request_done(200, time.monotonic() - started)
        return JSONResponse({"verdicts": [to_dict(v) for v in verdicts]})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        alive = ex.alive
        body = {
            "status": "ok" if alive else "down",
            "layers": ex.info.get("layers", {}),
            "workers": ex.workers,
            "in_flight": in_flight[0],
            "queue_limit": queue_limit,
            "forkserver_pid": ex.info.get("pid"),
            "judge": ex.info.get("judge", ""),
            "zygote_pid": ex.info.get("zygote_pid", 0),
            "preloaded": ex.info.get("preloaded", []),
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> PlainTextResponse:
        text = metrics.render(in_flight[0], ex.workers, ex.stats["restarts"], ex.alive)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    app.state.executor = ex
    app.state.metrics = metrics
    return app


async def _parse_items(request: Request, settings: ServerSettings) -> list[ScoreItem]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise _Busy(413, "too_large", 0, f"body of {declared} bytes exceeds {settings.max_body_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_body_bytes:
            raise _Busy(413, "too_large", 0, f"body exceeds {settings.max_body_bytes} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Busy(400, "malformed", 0, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _Busy(422, "invalid", 0, "body: expected an object with an 'items' list")
    unknown = sorted(set(payload) - {"items"})
    if unknown:
        raise _Busy(422, "invalid", 0, f"body: unknown field(s) {', '.join(unknown)}")
    raw = payload.get("items")
    if not isinstance(raw, list):
        raise _Busy(422, "invalid", 0, "items: expected a list")
    if len(raw) > settings.max_items:
        raise _Busy(
            413, "too_large", 0, f"items: {len(raw)} exceeds the limit of {settings.max_items} per request"
        )
    items = []
    for index, entry in enumerate(raw):
        try:
            items.append(from_dict(ScoreItem, entry))
        except RecordError as exc:
            raise _Busy(422, "invalid", 0, f"items[{index}]: {exc}") from None
    return items


def _admit(ex: Executor, n: int, in_flight: int, queue_limit: int, metrics: Metrics) -> None:
    if not ex.alive:
        raise _Busy(503, "unavailable", 2, "the sandbox is restarting; retry shortly")
    if n > queue_limit:
        raise _Busy(
            413, "too_large", 0, f"{n} items exceed the queue limit of {queue_limit}: split the batch"
        )
    if in_flight + n > queue_limit:
        rate = max(metrics.throughput(), float(ex.workers))
        retry = min(60, max(1, math.ceil((in_flight + n - queue_limit) / rate)))
        raise _Busy(
            429, "queue_full", retry, f"queue full ({in_flight} items in flight, limit {queue_limit})"
        )


def _restart(ex: Executor) -> bool:
    try:
        ex.start()
    except Exception:
        return False
    return ex.alive


async def _score_items(ex: Executor, items: list[ScoreItem], timeout_s: float) -> list[Verdict]:
    if not items:  # an empty batch has an empty answer (asyncio.wait refuses an empty set)
        return []
    futures = await asyncio.to_thread(lambda: [ex.submit(item) for item in items])
    waiting = [asyncio.wrap_future(f) for f in futures]
    done, _ = await asyncio.wait(waiting, timeout=timeout_s)
    verdicts = []
    for item, fut in zip(items, waiting, strict=True):
        if fut in done and fut.exception() is None:
            verdicts.append(fut.result())
        else:
            fut.cancel()
            verdicts.append(infra_error("request deadline exceeded", item.item_id))
    return verdicts


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT. Prints `reward service listening on URL` when ready."""
    import uvicorn

    if args.parent_pid is not None:
        exit_with_parent(args.parent_pid)
    preload = tuple(p for p in (getattr(args, "preload", "") or "").split(",") if p)
    settings = ServerSettings(workers=args.workers, queue_limit=args.queue_limit, preload=preload)
    executor = Executor(
        workers=settings.workers, preload=settings.preload, judge=getattr(args, "judge", "isolated")
    )
    try:
        executor.start()
    except Exception as exc:
        print(f"reward: cannot start the sandbox: {exc}", file=sys.stderr)
        return 3
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    app = create_app(settings, executor)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    print(f"{LISTEN_LINE} http://{shown}:{port}", flush=True)
    # uvicorn re-raises the stop signal after its graceful shutdown; with these handlers in place that
    # lands here instead of killing the process, so the sandbox is closed and we exit 0.
    stopped: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopped.append(signum))
    try:
        server.run(sockets=[sock])
    finally:
        executor.close()
        sock.close()
    return 0


def exit_with_parent(parent_pid: int) -> None:
    """SIGTERM (a graceful stop) when the launching process dies, even by SIGKILL."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request took effect
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reward", description="rlcoder reward service")
    add_serve_args(parser)
    return cmd_serve(parser.parse_args(argv))
