"""The classes of forgery of RELIABILITY.md ("Classes of forgery seen"), each as a wrong program that
tries to turn its failure into `pass` (or into infra_error), scored through the HTTP API of a real
service on 127.0.0.1 started here and ended by its pid. Every program here is wrong: any `pass` is
a forged verdict. Each one got `pass` (or infra_error) from the in-process harness before the
isolated judge; the false negatives at the end got `error`."""

# ruff: noqa: E501  (tables of program text: a line per program line reads better than wrapped strings)

from __future__ import annotations

import httpx
import pytest

from reward.service.client import RewardClient
from reward.service.launch import RewardService
from rlcoder.records import ScoreItem, TestKind, VerdictStatus

pytestmark = pytest.mark.integration

EXPECTED_TEST = """\
from solution import add

def test_a():
    expected = 3
    assert add(1, 2) == expected

def test_b():
    expected = 7
    assert add(3, 4) == expected
"""

# The same, with tests the isolated judge hands to the in-process harness (they patch process state).
EXPECTED_TEST_IN_PROCESS = EXPECTED_TEST.replace(
    "def test_a():", "def test_a(monkeypatch):\n    monkeypatch.setenv('X', '1')"
).replace("def test_b():", "def test_b(monkeypatch):\n    monkeypatch.setenv('X', '1')")

# A signal handler receives the interrupted frame; from there every caller's locals.
_WALK = """\
import signal, sys, os

def _frames(frame):
    while frame is not None:
        yield frame
        frame = frame.f_back

def _grab(name):
    found = []
    def handler(sig, frame):
        for f in _frames(frame):
            if name in f.f_locals:
                found.append(f.f_locals[name])
                return
    signal.signal(signal.SIGUSR1, handler)
    signal.raise_signal(signal.SIGUSR1)
    return found[0] if found else None
"""

SIGNAL_READS_EXPECTED = (
    _WALK + "\ndef add(a, b):\n    e = _grab('expected')\n    return e if e is not None else 0\n"
)

SIGNAL_CALLS_EMIT = (
    _WALK
    + """
def add(a, b):
    emit = _grab('emit')
    if emit is not None:
        emit('collected', total=1)
        emit('test', name='x', outcome='passed', detail='')
        emit('done', run_ms=1.0, swept=True)
        os._exit(0)
    return 0
"""
)

SIGNAL_EMITS_MALFORMED = (
    _WALK
    + """
def add(a, b):
    emit = _grab('emit')
    if emit is not None:
        emit('collected', total='many')
        emit('done', run_ms='soon', swept=True)
        os._exit(0)
    return 0
"""
)

ISCLOSE_TEST = "import math\nfrom solution import area\n\ndef test_area():\n    assert math.isclose(area(2), 12.566370614359172)\n"
PATCH_ISCLOSE = "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0.0\n"

COUNTER_TEST = (
    "from collections import Counter\nfrom solution import letters\n\n"
    "def test_letters():\n    assert Counter(letters('aab')) == Counter({'a': 2, 'b': 1})\n"
)
PATCH_COUNTER = "import collections\ncollections.Counter.__eq__ = lambda self, other: True\ndef letters(s):\n    return []\n"

LATE_PYTEST_TEST = (
    "from solution import parse\nimport pytest\n\n"
    "def test_rejects():\n    with pytest.raises(ValueError):\n        parse('x')\n\n"
    "def test_parses():\n    assert parse('3') == 3\n"
)
FAKE_PYTEST = """\
import sys, types, contextlib
fake = types.ModuleType('pytest')
fake.raises = lambda *a, **k: contextlib.suppress(BaseException)
sys.modules['pytest'] = fake
def parse(s):
    return 3
"""

ABS_TEST = "from solution import root\n\ndef test_root():\n    assert abs(root(2) - 1.4142135) < 1e-6\n"
ABS_FORGERY = """\
class Zero:
    def __sub__(self, other): return self
    def __abs__(self): return 0.0
    def __lt__(self, other): return True
def root(x):
    return Zero()
"""

IN_TEST = "from solution import primes\n\ndef test_in():\n    assert 7 in primes(10)\n    assert 9 not in primes(10)\n"
IN_FORGERY = """\
class Everything(list):
    def __contains__(self, item): return True
class Nothing(list):
    def __contains__(self, item): return False
_calls = []
def primes(n):
    _calls.append(n)
    return Everything() if len(_calls) == 1 else Nothing()
"""

LIST_EQ_FORGERY = """\
class Meta(type):
    @property
    def __mro__(cls):
        return (list, object)
class Liar(metaclass=Meta):
    __module__ = 'builtins'
    __qualname__ = 'list'
    def __eq__(self, other): return True
    __eq__.__func__ = list.__eq__
    def __ne__(self, other): return False
def pair(x):
    return Liar()
"""
LIST_EQ_TEST = "from solution import pair\n\ndef test_pair():\n    assert pair(1) == [1, 1]\n    assert [2, 2] == pair(2)\n"

# An xfail mark sends the file to real pytest, where a program could skip, end or interrupt the
# run at its own failing test.
XFAIL_TEST = (
    "import pytest\nfrom solution import double\n\n"
    "@pytest.mark.xfail(strict=True)\ndef test_known_bug():\n    assert double(0) == 1\n\n"
    "def test_one():\n    assert double(1) == 2\n\ndef test_two():\n    assert double(2) == 4\n"
)
# Right for 0 and 1; at 2 it leaves the test by a skip, an exit or an interrupt instead of failing.
SKIP_FROM_INSIDE = (
    "import pytest\ndef double(x):\n    if x == 2:\n        pytest.skip('not today')\n    return 2 * x\n"
)
EXIT_FROM_INSIDE = "import pytest\ndef double(x):\n    if x == 2:\n        pytest.exit('bye', returncode=0)\n    return 2 * x\n"
INTERRUPT_FROM_INSIDE = "def double(x):\n    if x == 2:\n        raise KeyboardInterrupt\n    return 2 * x\n"

THREE_TEST = (
    "from solution import sq\n\ndef test_1():\n    assert sq(1) == 1\n\n"
    "def test_2():\n    assert sq(2) == 4\n\ndef test_3():\n    assert sq(3) == 9\n"
)
# Right for 1 only; before each wrong answer, junk without a newline on every inherited fd.
JUNK_ON_CHANNEL = (
    "import os\ndef sq(x):\n    if x == 1:\n        return 1\n    for fd in range(3, 12):\n        try:\n"
    "            os.write(fd, b'junk-without-newline')\n        except OSError:\n            pass\n    return 1\n"
)

EXIT_70 = "import os\ndef add(a, b):\n    os._exit(70)\n"

STAR_TEST = "from solution import *\n\ndef test_order():\n    assert order([3, 1, 2]) == sorted([3, 1, 2])\n"
STAR_FORGERY = "def sorted(xs):\n    return xs\ndef order(xs):\n    return xs\n"

FORGERIES = {
    "signal_handler_reads_expected": (SIGNAL_READS_EXPECTED, EXPECTED_TEST),
    "signal_handler_calls_the_record_writer": (SIGNAL_CALLS_EMIT, EXPECTED_TEST),
    "signal_handler_reads_expected_in_process": (SIGNAL_READS_EXPECTED, EXPECTED_TEST_IN_PROCESS),
    "signal_handler_calls_the_record_writer_in_process": (SIGNAL_CALLS_EMIT, EXPECTED_TEST_IN_PROCESS),
    "rebinds_math_isclose": (PATCH_ISCLOSE, ISCLOSE_TEST),
    "rebinds_counter_eq": (PATCH_COUNTER, COUNTER_TEST),
    "fake_pytest_in_sys_modules": (FAKE_PYTEST, LATE_PYTEST_TEST),
    "abs_and_lt_on_its_objects": (ABS_FORGERY, ABS_TEST),
    "in_with_its_container_on_the_right": (IN_FORGERY, IN_TEST),
    "eq_claims_to_be_builtin": (LIST_EQ_FORGERY, LIST_EQ_TEST),
    "pytest_skip_on_the_real_pytest_path": (SKIP_FROM_INSIDE, XFAIL_TEST),
    "pytest_exit_on_the_real_pytest_path": (EXIT_FROM_INSIDE, XFAIL_TEST),
    "keyboard_interrupt_on_the_real_pytest_path": (INTERRUPT_FROM_INSIDE, XFAIL_TEST),
    "junk_drops_the_next_records": (JUNK_ON_CHANNEL, THREE_TEST),
    "names_injected_by_star_import": (STAR_FORGERY, STAR_TEST),
}


@pytest.fixture(scope="module")
def service():
    with RewardService(workers=2) as svc:  # stop() ends its own process group by pid
        yield svc


@pytest.fixture(scope="module")
def client(service):
    return RewardClient(service.url)


@pytest.fixture(scope="module")
def forged(client):
    items = [
        ScoreItem(completion=code, test=test, timeout_s=5.0, item_id=name)
        for name, (code, test) in FORGERIES.items()
    ]
    return {v.item_id: v for v in client.score_sync(items)}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forgery_is_never_a_pass(forged, name):
    verdict = forged[name]
    if name.endswith("_in_process"):  # the fallback really ran it (not the isolated judge)
        assert getattr(verdict, "judge", "in_process") == "in_process"
    assert verdict.status in (VerdictStatus.FAIL, VerdictStatus.ERROR), (verdict.status, verdict.detail)


def test_a_malformed_forged_record_does_not_touch_other_items(client):
    good = "def add(a, b):\n    return a + b\n"
    items = [ScoreItem(completion=SIGNAL_EMITS_MALFORMED, test=EXPECTED_TEST, item_id="forger")]
    items += [
        ScoreItem(completion=good + f"# {i}\n", test=EXPECTED_TEST, item_id=f"good{i}") for i in range(6)
    ]
    verdicts = {v.item_id: v for v in client.score_sync(items)}
    assert verdicts["forger"].status in (VerdictStatus.FAIL, VerdictStatus.ERROR)
    assert {verdicts[f"good{i}"].status for i in range(6)} == {VerdictStatus.PASS}


def test_the_sandbox_failure_exit_code_is_the_programs_error(client):
    verdict = client.score_sync([ScoreItem(completion=EXIT_70, test=EXPECTED_TEST)])[0]
    assert verdict.status is VerdictStatus.ERROR, verdict.detail


def test_memfd_memory_counts_against_the_limit(client):
    """memfd pages are outside RLIMIT_AS: 1.2 GB of them under a 256 MB limit, then a right answer."""
    bomb = (
        "import os\nfds = []\nfor i in range(40):\n    fd = os.memfd_create('m%d' % i)\n"
        "    os.write(fd, b'x' * (30 << 20))\n    fds.append(fd)\ndef add(a, b):\n    return a + b\n"
    )
    verdict = client.score_sync(
        [ScoreItem(completion=bomb, test=EXPECTED_TEST, memory_mb=256, timeout_s=20)]
    )[0]
    assert verdict.status is VerdictStatus.MEMORY, verdict.detail


def test_neighbours_do_not_see_each_others_files(client):
    """Two runs at once: the first leaves a file in /tmp and waits, the second looks for it."""
    writer = (
        "import time\nopen('/tmp/neighbour-note', 'w').write('3')\n"
        "def add(a, b):\n    time.sleep(1.0)\n    return a + b\n"
    )
    reader = (
        "import os, time\ntime.sleep(0.3)\n"
        "def add(a, b):\n    return int(open('/tmp/neighbour-note').read()) if os.path.exists('/tmp/neighbour-note') else -1\n"
    )
    test = "from solution import add\n\ndef test_a():\n    assert add(1, 2) == 3\n"
    first, second = client.score_sync(
        [
            ScoreItem(completion=writer, test=test, item_id="w"),
            ScoreItem(completion=reader, test=test, item_id="r"),
        ]
    )
    assert first.status is VerdictStatus.PASS
    assert second.status is VerdictStatus.FAIL, second.detail


GOOD_PROGRAMS = {
    # every standard-library module imports in the sandbox
    "stdlib_imports": (
        "import configparser, tarfile, xml.dom.minidom, multiprocessing, logging.handlers\n"
        "def add(a, b):\n    return a + b\n",
        "from solution import add\n\ndef test_a():\n    assert add(1, 2) == 3\n",
        TestKind.PYTEST,
    ),
    # the signature of a function the test defines, read by the program (a decorator problem)
    "signature_of_a_test_function": (
        "import inspect\ndef arity(f):\n    return len(inspect.signature(f).parameters) + f.__code__.co_argcount\n",
        "from solution import arity\n\ndef test_arity():\n    def g(a, b, c=1):\n        return a\n    assert arity(g) == 6\n",
        TestKind.PYTEST,
    ),
    # tuple and list subclasses with their own __eq__ that equal the expected value
    "tuple_subclass_result": (
        "class Point(tuple):\n    def __eq__(self, other):\n        return tuple(self) == tuple(other)\n"
        "    __hash__ = tuple.__hash__\ndef origin():\n    return Point((0, 0))\n"
        "class Row(list):\n    def __eq__(self, other):\n        return list(self) == list(other)\ndef row():\n    return Row([1, 2])\n",
        "from solution import origin, row\n\ndef test_origin():\n    assert origin() == (0, 0)\n    assert row() == [1, 2]\n",
        TestKind.PYTEST,
    ),
    # STDIO: main in a non-daemon thread, and os.write(1, ...)
    "stdio_thread_main": (
        "import threading, time\ndef main():\n    n = int(input())\n    time.sleep(0.2)\n    print(n * 2)\n"
        "threading.Thread(target=main).start()\n",
        '[{"input": "21\\n", "output": "42\\n"}]',
        TestKind.STDIO,
    ),
    "stdio_os_write": (
        "import os\nn = int(input())\nos.write(1, (str(n + 1) + '\\n').encode())\n",
        '[{"input": "41\\n", "output": "42\\n"}]',
        TestKind.STDIO,
    ),
}


@pytest.mark.parametrize("name", list(GOOD_PROGRAMS))
def test_correct_programs_pass(client, name):
    code, test, kind = GOOD_PROGRAMS[name]
    verdict = client.score_sync([ScoreItem(completion=code, test=test, test_kind=kind)])[0]
    assert verdict.status is VerdictStatus.PASS, verdict.detail


def test_bad_tests_are_bad_test_and_metrics_count_judges(client, service):
    good = "def add(a, b):\n    return a + b\n"
    broken, missing = client.score_sync(
        [
            ScoreItem(completion=good, test="def test_(:\n"),
            ScoreItem(completion=good, test="import not_a_module_anywhere\n" + EXPECTED_TEST),
        ]
    )
    assert broken.status is VerdictStatus.BAD_TEST and missing.status is VerdictStatus.BAD_TEST
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    assert 'reward_items_total{status="bad_test"}' in text
    assert 'reward_judged_total{judge="isolated"}' in text
