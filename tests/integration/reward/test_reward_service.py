"""The HTTP service through its client and launcher: scoring, health and metrics, bad requests,
backpressure, and the service dying or restarting mid-batch (infra_error or a retry, never a 0)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from reward.sandbox import isolation
from reward.service.client import RewardClient
from reward.service.launch import RewardService
from reward.service.server import LISTEN_LINE
from reward.testing import samples
from rlcoder.records import ScoreItem, VerdictStatus

pytestmark = pytest.mark.integration

SLEEPY = "import time\ndef add(a, b):\n    time.sleep({s})\n    return a + b\n"


def good(i: int | str = 0) -> ScoreItem:
    return ScoreItem(completion=samples.GOOD_ADD + f"# {i}\n", test=samples.ADD_TEST, item_id=f"good-{i}")


def bad(i: int | str = 0) -> ScoreItem:
    return ScoreItem(
        completion=f"def add(a, b):\n    return {i}\n", test=samples.ADD_TEST, item_id=f"bad-{i}"
    )


def sleepy(seconds: float, i: int | str = 0) -> ScoreItem:
    return ScoreItem(
        completion=SLEEPY.format(s=seconds) + f"# {i}\n", test=samples.ADD_TEST, item_id=f"sleepy-{i}"
    )


@pytest.fixture(scope="module")
def service():
    with RewardService(workers=2) as svc:
        yield svc


def test_scores_a_batch_in_order_with_ids(service):
    items = [good(i) if i % 3 else bad(i) for i in range(12)]
    verdicts = RewardClient(service.url, batch_size=5).score_sync(items)
    assert [v.item_id for v in verdicts] == [i.item_id for i in items]
    assert [v.status for v in verdicts] == [
        VerdictStatus.PASS if i % 3 else VerdictStatus.FAIL for i in range(12)
    ]


def test_async_client_and_concurrent_requests(service):
    client = RewardClient(service.url, max_concurrency=4, batch_size=2)

    async def main() -> list[list[VerdictStatus]]:
        batches = [[good(f"a{i}-{j}") for j in range(3)] for i in range(4)]
        results = await asyncio.gather(*(client.score(b) for b in batches))
        return [[v.status for v in r] for r in results]

    assert asyncio.run(main()) == [[VerdictStatus.PASS] * 3] * 4


def test_healthz_reports_layers_and_metrics_count(service):
    health = httpx.get(f"{service.url}/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 2
    assert health["layers"]["process"] and health["layers"]["rlimits"]
    RewardClient(service.url).score_sync([bad("metrics")])
    text = httpx.get(f"{service.url}/metrics").text
    assert 'reward_items_total{status="fail"}' in text
    assert "reward_execution_seconds_bucket" in text and "reward_queue_depth 0" in text
    assert "reward_forkserver_up 1" in text


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"items": [{"completion": "x", "test": "y", "bogus": 1}]}', 422, "bogus"),
        (b'{"items": [{"completion": "x", "test": "y", "timeout_s": "slow"}]}', 422, "timeout_s"),
        (b'{"items": [{"completion": "x"}]}', 422, "test"),
        (b'{"items": [{"completion": "x", "test": "y", "test_kind": "java"}]}', 422, "test_kind"),
        (b'{"items": "all"}', 422, "items"),
        (b'{"items": [], "priority": 1}', 422, "priority"),
    ],
)
def test_bad_requests_get_a_clear_error(service, body, code, needle):
    response = httpx.post(
        f"{service.url}/v1/score", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == code
    assert needle in response.json()["error"]


def test_an_empty_batch_gets_an_empty_answer(service):
    response = httpx.post(f"{service.url}/v1/score", json={"items": []})
    assert response.status_code == 200 and response.json() == {"verdicts": []}


def test_oversize_bodies_are_refused(service):
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # declares 1 GiB, sends 2 bytes
        raw.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1073741824\r\n\r\n{}"
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 413")
    huge = b'{"items": [{"completion": "' + b"x" * (70 << 20) + b'", "test": "t"}]}'
    assert httpx.post(f"{service.url}/v1/score", content=huge, timeout=60).status_code == 413
    assert RewardClient(service.url).score_sync([good("after-huge")])[0].status is VerdictStatus.PASS


def test_fork_server_crash_is_survived(service):
    old = httpx.get(f"{service.url}/healthz").json()["forkserver_pid"]
    os.kill(old, 9)
    deadline = time.monotonic() + 10
    while httpx.get(f"{service.url}/healthz").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"{service.url}/healthz").status_code == 503  # reported down, not hidden
    assert RewardClient(service.url).score_sync([good("after-crash")])[0].status is VerdictStatus.PASS
    health = httpx.get(f"{service.url}/healthz").json()
    assert health["status"] == "ok" and health["forkserver_pid"] != old
    assert "reward_forkserver_restarts_total 1" in httpx.get(f"{service.url}/metrics").text


def test_backpressure_returns_429_with_retry_after_and_the_client_waits():
    with RewardService(workers=1, queue_limit=2) as svc:
        slow = threading.Thread(
            target=lambda: httpx.post(
                f"{svc.url}/v1/score",
                json={"items": [{"completion": SLEEPY.format(s=1.5), "test": samples.ADD_TEST}] * 2},
                timeout=30,
            )
        )
        slow.start()
        time.sleep(0.5)
        refused = httpx.post(f"{svc.url}/v1/score", json={"items": [{"completion": "x = 1", "test": "y"}]})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        verdicts = RewardClient(svc.url, retries=5).score_sync([good("after-429")])
        slow.join()
        assert verdicts[0].status is VerdictStatus.PASS  # retried after Retry-After, not dropped
        assert 'reward_rejected_total{reason="queue_full"}' in httpx.get(f"{svc.url}/metrics").text


def test_service_killed_mid_batch_gives_infra_error_not_zero():
    svc = RewardService(workers=2)
    svc.start()
    fork_server = httpx.get(f"{svc.url}/healthz").json()["forkserver_pid"]
    client = RewardClient(svc.url, retries=1, backoff_s=0.1, request_timeout_s=30)
    result: list = []
    worker = threading.Thread(
        target=lambda: result.extend(client.score_sync([sleepy(3, i) for i in range(4)]))
    )
    worker.start()
    time.sleep(1.0)
    svc.kill()
    worker.join(timeout=60)
    assert [v.status for v in result] == [VerdictStatus.INFRA_ERROR] * 4
    assert all(v.item_id.startswith("sleepy-") for v in result)
    # The orphaned fork server notices, kills its runs, removes its cgroup and exits.
    cgroup = f"/sys/fs/cgroup/pids/rlcoder-reward-{fork_server}"
    deadline = time.monotonic() + 15
    while (_alive(fork_server) or os.path.exists(cgroup)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(fork_server) and not os.path.exists(cgroup)
    uid_base = isolation.sandbox_uid(fork_server, 0)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _uid(p) in range(uid_base, uid_base + 128)]


def test_service_restarted_mid_batch_is_retried():
    port = _free_port()
    first = RewardService(workers=2, port=port)
    first.start()
    client = RewardClient(first.url, retries=8, backoff_s=0.5, request_timeout_s=30)
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(client.score_sync([sleepy(2, "r")])))
    worker.start()
    time.sleep(0.8)
    first.kill()
    with RewardService(workers=2, port=port):
        worker.join(timeout=90)
    assert [v.status for v in result] == [VerdictStatus.PASS]


def test_cli_entry_points_print_the_url():
    for command in (["-m", "reward"], ["-m", "rlcoder", "reward", "serve"]):
        proc = subprocess.Popen(
            [sys.executable, *command, "--port", "0", "--workers", "1"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith(LISTEN_LINE + " http://127.0.0.1:")
            url = line.split()[-1]
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            os.killpg(proc.pid, 15)
            assert proc.wait(timeout=30) == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _uid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(f.read().split("Uid:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return -1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
