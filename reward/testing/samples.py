"""Sample programs for tests, benches and the soak run: one small problem, a correct solution, and the
hostile programs of RELIABILITY.md, each with the verdicts it may get (never `pass`).
"""

# ruff: noqa: E501  (tables of program text: a line per program line reads better than wrapped strings)

from __future__ import annotations

from dataclasses import dataclass

ADD_TEST = """\
from solution import add

def test_small():
    assert add(1, 2) == 3

def test_big():
    expected = 1000001
    assert add(10**6, 1) == expected
"""

GOOD_ADD = "def add(a, b):\n    return a + b\n"
_SECRET_TEST = """\
from solution import add

def test_secret():
    assert add(0, 0) == "rlcoder-secret-value"
"""
_PERSIST_TEST = """\
from solution import add

def test_persisted():
    assert add(1, 2) == 3
"""


@dataclass(frozen=True)
class Hostile:
    name: str
    code: str
    allowed: frozenset[str]  # verdict statuses that are right for it
    test: str = ADD_TEST
    timeout_s: float = 2.0
    memory_mb: int = 256
    needs_guard_off: bool = False  # exercises an OS layer the guard would stop first
    layer: str = ""  # that layer (a `Layers` field): the case is meaningless on hosts without it
    isolated: frozenset[str] | None = None  # right statuses under the isolated judge, where they differ

    def allowed_for(self, judge: str) -> frozenset[str]:
        return self.isolated if judge == "isolated" and self.isolated is not None else self.allowed


def _h(name: str, code: str, *allowed: str, **kw: object) -> Hostile:
    return Hostile(name, code, frozenset(allowed), **kw)  # type: ignore[arg-type]


_CORRECT = "def add(a, b):\n    return a + b\n"
_NON_PASS = ("fail", "error", "timeout", "memory")

HOSTILE: tuple[Hostile, ...] = (
    # runaway time
    _h("infinite_loop", "def add(a, b):\n    while True:\n        pass\n", "timeout"),
    _h("sleep_past_limit", "import time\ndef add(a, b):\n    time.sleep(60)\n    return a + b\n", "timeout"),
    _h("c_level_pow", "def add(a, b):\n    x = 7 ** (10 ** 9)\n    return a + b\n", "timeout", "memory"),
    _h(
        "regex_backtracking",
        "import re\ndef add(a, b):\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\n    return a + b\n",
        "timeout",
    ),
    # runaway processes
    _h("fork_bomb", "import os\nwhile True:\n    os.fork()\n" + _CORRECT, "error", "timeout"),
    _h(
        "fork_bomb_os_layer",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n" + _CORRECT,
        "error",
        "timeout",
        needs_guard_off=True,
        layer="uid_drop",
    ),
    _h(
        "thread_bomb",
        "import threading, time\nts = []\nwhile True:\n"
        "    t = threading.Thread(target=time.sleep, args=(30,))\n    t.start()\n    ts.append(t)\n"
        + _CORRECT,
        "error",
        "timeout",
    ),
    _h(
        "double_fork_daemon",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(300)\n"
        "    os._exit(0)\n" + _CORRECT,
        "error",
    ),
    _h(
        "double_fork_daemon_os_layer",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(300)\n"
        "    os._exit(0)\ndef add(a, b):\n    return a - b\n",
        "fail",
        needs_guard_off=True,
        layer="uid_drop",
    ),
    # runaway memory and output
    _h("memory_bomb", "def add(a, b):\n    x = bytearray(8 * 1024 ** 3)\n    return a + b\n", "memory"),
    _h(
        "memory_growth",
        "def add(a, b):\n    xs = []\n    while True:\n        xs.append(' ' * 10 ** 6)\n",
        "memory",
    ),
    _h(
        "huge_file",
        "def add(a, b):\n    with open('big.bin', 'wb') as f:\n        while True:\n            f.write(b'x' * 2 ** 20)\n",
        "error",
    ),
    _h("stdout_flood", "def add(a, b):\n    while True:\n        print('y' * 1000)\n", "error", "timeout"),
    _h(
        "stderr_flood",
        "import sys\ndef add(a, b):\n    for _ in range(10 ** 7):\n        sys.stderr.write('z' * 100 + '\\n')\n    return 0\n",
        "error",
        "timeout",
        "fail",
    ),
    # network
    _h(
        "connect_loopback",
        "import socket\ndef add(a, b):\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return a + b\n",
        "error",
    ),
    _h(
        "connect_loopback_os_layer",
        "import socket\ndef add(a, b):\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return a + b\n",
        "error",
        needs_guard_off=True,
        layer="netns",
    ),
    _h(
        "dns_lookup",
        "import socket\ndef add(a, b):\n    socket.getaddrinfo('pypi.org', 443)\n    return a + b\n",
        "error",
    ),
    _h(
        "listen_socket",
        "import socket\ns = socket.socket()\ns.bind(('0.0.0.0', 0))\ns.listen()\n" + _CORRECT,
        "error",
    ),
    # filesystem
    _h(
        "read_test_file",
        "import glob, os\ndef add(a, b):\n    names = glob.glob('*') + glob.glob('/sandbox/*') + glob.glob('/tmp/**', recursive=True)\n"
        "    src = ''\n    for p in names:\n        try:\n            src += open(p).read()\n        except OSError:\n"
        "            pass\n    return 1000001 if '1000001' in src else -1\n",
        "fail",
        "error",
    ),
    _h(
        "write_outside_scratch",
        "def add(a, b):\n    open('/etc/rlcoder-pwned', 'w').write('x')\n    return a + b\n",
        "error",
    ),
    _h(
        "delete_outside_scratch",
        "import os\ndef add(a, b):\n    os.remove('/etc/hostname')\n    return a + b\n",
        "error",
    ),
    # other processes and secrets
    _h("kill_parent", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + _CORRECT, "error"),
    _h(
        "kill_parent_os_layer",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + _CORRECT,
        "error",
        needs_guard_off=True,
        layer="uid_drop",
    ),
    _h("kill_everything", "import os\nos.kill(-1, 9)\n" + _CORRECT, "error"),
    _h(
        "ptrace_via_ctypes",
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.ptrace(16, 1, 0, 0)\n" + _CORRECT,
        "error",
    ),
    _h(
        "read_env_secret",
        "import os\ndef add(a, b):\n    return os.environ.get('RLCODER_SECRET') or open('/proc/1/environ').read()\n",
        "fail",
        "error",
        test=_SECRET_TEST,
    ),
    # faking success
    _h("sys_exit_at_import", "import sys\nsys.exit(0)\n", "error"),
    _h("os_exit_at_import", "import os\nos._exit(0)\n", "error"),
    _h("sys_exit_in_call", "import sys\ndef add(a, b):\n    sys.exit(0)\n", "error"),
    _h(
        "print_fake_pass",
        'print(\'2 passed in 0.01s\')\nprint(\'{"t": "done", "run_ms": 1}\')\ndef add(a, b):\n    return 0\n',
        "fail",
    ),
    _h(
        "forge_result_fd",
        "import os\nfor fd in range(3, 20):\n    try:\n"
        '        os.write(fd, b\'0\' * 32 + b\' {"t":"collected","total":2}\\n\')\n'
        '        os.write(fd, b\'0\' * 32 + b\' {"t":"done","run_ms":1,"swept":true}\\n\')\n'
        "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
        "fail",
        isolated=frozenset({"error"}),  # fd 3 is its channel to the judge: junk there breaks it
    ),
    _h(
        "always_equal",
        "class Eq:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n"
        "def add(a, b):\n    return Eq()\n",
        "fail",
    ),
    _h(
        "always_equal_partial",
        "import functools, operator\nEq = type('Eq', (), {'__eq__': functools.partial(operator.is_not, None)})\n"
        "def add(a, b):\n    return Eq()\n",
        "fail",
    ),
    _h(
        "always_equal_in_list",
        "class Eq(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return [Eq(0)][0]\n",
        "fail",
    ),
    _h(
        "frame_locals",
        "import sys\ndef add(a, b):\n    return sys._getframe(1).f_locals.get('expected', 3)\n",
        "fail",
        "error",
    ),
    _h(
        "frame_via_inspect",
        "import inspect\ndef add(a, b):\n    f = inspect.currentframe().f_back\n    return f.f_locals.get('expected', 3)\n",
        "fail",
        "error",
    ),
    _h(
        "frame_via_traceback",
        "def add(a, b):\n    try:\n        raise ValueError\n    except ValueError as e:\n"
        "        f = e.__traceback__.tb_frame.f_back\n    return f.f_locals.get('expected', 3)\n",
        "fail",
        "error",
    ),
    _h(
        "code_constants",
        "import sys\ndef add(a, b):\n    consts = sys._getframe(1).f_code.co_consts\n"
        "    return max(c for c in consts if isinstance(c, int))\n",
        "fail",
        "error",
    ),
    _h(
        "gc_referrers",
        "import gc\ndef add(a, b):\n    for o in gc.get_objects():\n"
        "        if isinstance(o, dict) and 'expected' in o:\n            return o['expected']\n    return 3\n",
        "fail",
        "error",
    ),
    _h(
        "patch_test_functions",
        "import sys, gc\nfor m in list(sys.modules.values()):\n    for k in list(vars(m)):\n"
        "        if k.startswith('test_'):\n            setattr(m, k, lambda *a, **kw: None)\n"
        "def add(a, b):\n    return 0\n",
        "fail",
        "error",
    ),
    _h(
        "patch_pytest_raises",
        "import pytest, contextlib\npytest.raises = lambda *a, **k: contextlib.nullcontext()\n"
        "def add(a, b):\n    return 0\n",
        "error",
        test="import pytest\nfrom solution import add\n\ndef test_r():\n    with pytest.raises(ValueError):\n"
        "        add(1, 2)\n",
        isolated=frozenset({"fail"}),  # its pytest is not the judge's: the real raises says DID NOT RAISE
    ),
    _h(
        "patch_builtins",
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\nbuiltins.isinstance = lambda *a: True\n"
        "def add(a, b):\n    return 0\n",
        "error",
        "fail",
    ),
    _h(
        "patch_harness_classify",
        "import sys\nfor name, m in list(sys.modules.items()):\n    if name.startswith('reward'):\n"
        "        for k in ('_classify', 'tampered', 'summarize'):\n            if hasattr(m, k):\n"
        "                setattr(m, k, lambda *a, **kw: 'passed' if k == '_classify' else '')\n"
        "def add(a, b):\n    return 0\n",
        "error",
        "fail",
    ),
    _h(
        "settrace_jump",
        "import sys\ndef tracer(frame, event, arg):\n    return tracer\nsys.settrace(tracer)\n"
        "def add(a, b):\n    return 0\n",
        "error",
        "fail",
    ),
    _h(
        "skip_from_solution",
        "import pytest\ndef add(a, b):\n    pytest.skip('nothing to see')\n",
        "error",
    ),
    # library code that reads frames for its own bookkeeping must not hand one to the solution
    _h(
        "frame_via_namedtuple_defaults",
        "import sys\nfrom collections import namedtuple\ndef add(a, b):\n"
        "    P = namedtuple('P', 'x', defaults=map(sys._getframe, [2]))\n"
        "    return P._field_defaults['x'].f_locals.get('expected', 3)\n",
        "fail",
        "error",
    ),
    _h(
        "frame_via_mock_side_effect",
        "import sys\nfrom unittest import mock\ndef add(a, b):\n    f = mock.Mock(side_effect=sys._getframe)(0)\n"
        "    while f is not None and 'expected' not in f.f_locals:\n        f = f.f_back\n"
        "    return f.f_locals['expected'] if f else 3\n",
        "fail",
        "error",
    ),
    _h(
        "frame_via_inspect_stack",
        "import inspect\ndef add(a, b):\n    for info in inspect.stack():\n"
        "        if 'expected' in info.frame.f_locals:\n            return info.frame.f_locals['expected']\n    return 3\n",
        "fail",
        "error",
    ),
    _h(
        "locals_via_stack_summary",
        "import traceback\ndef add(a, b):\n"
        "    for fs in traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True):\n"
        "        if fs.locals and 'expected' in fs.locals:\n            return int(fs.locals['expected'])\n    return 3\n",
        "fail",
        "error",
    ),
    _h(
        "frame_via_logging_currentframe",
        "import logging\ndef add(a, b):\n    f = logging.currentframe()\n"
        "    while f is not None and 'expected' not in f.f_locals:\n        f = f.f_back\n"
        "    return f.f_locals['expected'] if f else 3\n",
        "fail",
        "error",
    ),
    _h(
        "rebind_guard_functions",
        "import sys\ng = sys.modules['reward.sandbox.guard']\ndef add(a, b):\n    saved = g._check, g._in_solution_context\n"
        "    g._check = g._in_solution_context = lambda *a: None\n    try:\n"
        "        return sys._getframe(1).f_locals.get('expected', 3)\n    finally:\n"
        "        g._check, g._in_solution_context = saved\n",
        "fail",
        "error",
    ),
    _h(
        "hook_reentry_via_filename_hash",
        "import sys\nleak = []\nclass S(str):\n    def __hash__(self):\n        f = sys._getframe(0)\n"
        "        while f is not None:\n            if 'expected' in f.f_locals:\n                leak.append(f.f_locals['expected'])\n"
        "            f = f.f_back\n        return str.__hash__(self)\n    __eq__ = str.__eq__\n"
        "def add(a, b):\n    try:\n        compile('x = 1', S('other.py'), 'exec')\n    except Exception:\n        pass\n"
        "    return leak[0] if leak else 3\n",
        "fail",
        "error",
    ),
    _h(
        "compile_as_trusted_file",
        "import sys\ncode = compile('import sys\\ndef g():\\n    return sys._getframe(2).f_locals', "
        "sys.modules['pytest'].__file__, 'exec')\nns = {}\nexec(code, ns)\n"
        "def add(a, b):\n    return ns['g']().get('expected', 3)\n",
        "error",
        "fail",
    ),
)

PERSIST_WRITE = (
    "import os\nopen('/tmp/rlcoder-persist', 'w').write('1')\nopen('/dev/shm/rlcoder-persist', 'w').write('1')\n"
    + ("def add(a, b):\n    return a + b\n")
)
PERSIST_READ = (
    "import os\ndef add(a, b):\n"
    "    seen = os.path.exists('/tmp/rlcoder-persist') or os.path.exists('/dev/shm/rlcoder-persist')\n"
    "    return a + b if seen else -1\n"
)
PERSIST_TEST = _PERSIST_TEST


# Completions that hold no runnable code or broken code (extraction and error handling).
NOT_CODE: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("empty", "", frozenset({"no_code"})),
    ("whitespace", "   \n\t\n", frozenset({"no_code"})),
    ("prose_only", "I am not sure how to solve this problem, sorry.", frozenset({"no_code"})),
    ("syntax_error", "```python\ndef add(a, b)\n    return a + b\n```", frozenset({"error"})),
    ("non_utf8", "```python\ndef add(a, b):\n    return a + b \udcff\udcfe\n```", frozenset({"error"})),
    ("null_bytes", "```python\ndef add(a, b):\n    return a + b\x00\n```", frozenset({"error"})),
    ("ten_megabytes", "x" * (10 << 20), frozenset({"no_code", "error"})),
    (
        "ten_megabytes_code",
        "```python\n" + "# pad\n" * ((10 << 20) // 6) + "def add(a, b):\n    return 0\n```",
        frozenset({"error", "fail"}),
    ),
)
