"""The body of one sandboxed child: enter the sandbox, arm the guard, run the program against its tests
with the right runner, report through the authenticated result channel, kill its own leftovers, exit.

Everything used after untrusted code starts is bound to locals or default arguments first, so a
program that rebinds module globals cannot change what gets reported.
"""

from __future__ import annotations

import _signal
import importlib.abc
import importlib.util
import os
import pathlib
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reward.harness import fast_path, runners
from reward.harness.compare import make_comparators
from reward.harness.fixtures import Unsupported
from reward.harness.testplan import TEST_FILENAME, TestPlan
from reward.sandbox import guard, isolation, tamper
from reward.verdicts import EXIT_SANDBOX_FAILED

_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


@dataclass
class ChildSpec:
    """Everything the child needs, prepared by the fork server before fork."""

    mode: str  # "fast" | "pytest" | "check" | "stdio"
    plan: TestPlan
    test_source: str
    code: str
    entry_point: str
    scratch: str
    uid: int
    limits: isolation.ChildLimits
    out_fd: int
    result_fd: int
    nonce: str
    layers: isolation.Layers
    trusted_files: frozenset[str]
    trusted_types: frozenset[type]
    guard_enabled: bool
    snapshot: tamper.Snapshot
    memory_cgroup: str = ""  # the slot's memory cgroup to join before the sandbox ("" = none)


def make_emit(
    fd: int,
    nonce: str,
    _write: Callable[[int, bytes], int] = os.write,
    _str: type = str,
    _int: type = int,
    _bool: type = bool,
    _isinstance: Any = isinstance,
    _escapes: dict[int, str] = _ESCAPES,
) -> Callable[..., None]:
    """A record writer whose output no later rebinding of json, builtins or this module can alter."""
    prefix = nonce.encode() + b" "

    def encode(value: Any) -> str:
        if _isinstance(value, _bool):
            return "true" if value else "false"
        if _isinstance(value, (_int, float)):
            return _str(value)
        return '"' + _str(value).translate(_escapes) + '"'

    def emit(kind: str, **fields: Any) -> None:
        parts = ['"t":"' + kind + '"']
        for key, value in fields.items():
            parts.append('"' + key + '":' + encode(value))
        data = prefix + ("{" + ",".join(parts) + "}\n").encode("utf-8", "replace")
        while data:
            try:
                n = _write(fd, data)
            except OSError:
                return
            data = data[n:]

    return emit


def child_main(spec: ChildSpec, arm: Callable[[guard.GuardConfig], None], _exit: Any = os._exit) -> None:
    """Never returns: whatever the program does, the process ends here with os._exit (an exception
    escaping into the fork server's loop would run server code in the child)."""
    try:
        _child_body(spec, arm, _exit)
    finally:
        _exit(0)


def _child_body(spec: ChildSpec, arm: Callable[[guard.GuardConfig], None], _exit: Any) -> None:
    ru0 = _usage()
    try:
        if spec.memory_cgroup:
            isolation.join_memory_cgroup(spec.memory_cgroup)
        if spec.layers.mountns and not isolation.private_tmp(spec.scratch):
            raise isolation.SandboxUnavailable("no private /tmp for the run")
        fd = isolation.enter_child(
            spec.uid, spec.limits, spec.scratch, spec.out_fd, spec.result_fd, spec.layers
        )
    except BaseException:
        _exit(EXIT_SANDBOX_FAILED)
    emit = make_emit(fd, spec.nonce)
    emit("ready")  # set-up succeeded: from here on, any exit or signal is the program's
    ru1 = _usage()
    sweep_self = _make_self_sweep()
    clock = time.perf_counter
    started = clock()
    try:
        _prepare_process(spec)
        solution_path = os.path.join(spec.scratch, "solution.py")
        if spec.guard_enabled:
            protected_test = os.path.join(spec.scratch, "test_solution.py")  # real pytest's copy
            protected = frozenset({protected_test})
            arm(
                guard.GuardConfig(
                    solution_files={solution_path},
                    trusted_files=spec.trusted_files,
                    protected_paths=protected,
                    block_sockets=True,
                    test_files=frozenset({TEST_FILENAME, protected_test}),
                    trusted_types=spec.trusted_types,
                )
            )
        _dispatch(spec, solution_path, emit)
    except Unsupported as exc:
        emit("fallback", reason=exc)
    except BaseException as exc:
        emit("error", phase="harness", detail=_exception_line(exc), memory=type(exc) is MemoryError)
    run_ms = (clock() - started) * 1000.0
    ru2 = _usage()
    # kill(-1) as the slot's own uid reaches only this run's processes; without a uid of its own the
    # child shares the server's uid, and the process-group kill by the fork server is all there is.
    swept = sweep_self() if spec.layers.uid_drop else False
    emit(
        "done",
        run_ms=run_ms,
        swept=swept,
        cpu_enter=ru1[0] - ru0[0],
        cpu_run=ru2[0] - ru1[0],
        flt_enter=ru1[1] - ru0[1],
        flt_run=ru2[1] - ru1[1],
    )


def _exception_line(exc: BaseException, _type: Any = type) -> str:
    """A description that survives a program that broke traceback, str or builtins."""
    try:
        return "".join(traceback.format_exception_only(_type(exc), exc)).strip()[-600:]
    except BaseException:
        return "the harness failed: " + _type(exc).__name__


def _usage() -> tuple[float, int]:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1000.0, ru.ru_minflt


def _make_self_sweep(_kill: Any = os.kill, _sig: int = 9) -> Callable[[], bool]:
    def sweep() -> bool:
        """Kill every other process of this slot's uid (see isolation.sweep_uid for why twice)."""
        try:
            _kill(-1, _sig)
            _kill(-1, _sig)
        except OSError:
            return False
        return True

    return sweep


def _prepare_process(spec: ChildSpec) -> None:
    random.seed()
    os.environ.clear()
    os.environ.update(
        {
            "HOME": spec.scratch,
            "TMPDIR": spec.scratch,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }
    )
    tempfile.tempdir = spec.scratch
    sys.dont_write_bytecode = True
    sys.argv = ["solution.py"]
    sys.path[:0] = [spec.scratch]
    with open(os.path.join(spec.scratch, "solution.py"), "w", encoding="utf-8", errors="replace") as f:
        f.write(spec.code)
    _frameless_signals()


def _frameless_signals(
    _signal_module: Any = _signal, _install: Any = _signal.signal, _callable: Any = callable
) -> None:
    """The program's signal handlers get no frame: the interrupted frame of a handler started with
    `signal.raise_signal` is the harness's, and its f_back/f_locals reach the test's locals and the
    record writer (RELIABILITY.md). Both `signal.signal` and `_signal.signal` install a wrapper."""

    def install(signalnum: Any, handler: Any) -> Any:
        if not _callable(handler):
            return _install(signalnum, handler)

        def frameless(signum: int, frame: Any, _handler: Any = handler) -> Any:
            return _handler(signum, None)

        return _install(signalnum, frameless)

    _signal_module.signal = install
    signal.signal = install


def _dispatch(spec: ChildSpec, solution_path: str, emit: Callable[..., None]) -> None:
    scratch = pathlib.Path(spec.scratch)
    if spec.mode == "pytest":
        runners.run_real_pytest(scratch, spec.test_source, emit, strict=True)
        return
    namespace = make_comparators(spec.trusted_files, spec.trusted_types)
    if spec.mode == "stdio":
        runners.run_stdio(spec.plan, solution_path, spec.code, emit)
        return
    if spec.mode == "check":
        runners.run_check(spec.plan, solution_path, spec.code, spec.entry_point, namespace, emit)
        return
    sys.meta_path.insert(0, _SolutionFinder(solution_path, spec.code))
    check = _make_tamper_check(spec.snapshot)
    assert spec.plan.code is not None
    fast_path.run_module(spec.plan.code, namespace, scratch, emit, check)


def _make_tamper_check(snap: Any, _tampered: Any = tamper.tampered) -> Callable[[], str]:
    def check() -> str:
        return _tampered(snap)

    return check


# Namespaces a program must not rebind (checked after the module runs and after every test).
_PROTECTED_MODULES = [
    "builtins",
    "pytest",
    "inspect",
    "itertools",
    "re",
    "types",
    "traceback",
    "functools",
    "reprlib",
    "_pytest.fixtures",
    "_pytest.capture",
    "reward.harness.fast_path",
    "reward.harness.fixtures",
    "reward.harness.compare",
    "reward.sandbox.guard",
    "reward.sandbox.tamper",
    "reward.sandbox.child",
    "reward.harness.runners",
    "reward.harness.testplan",
    "_pytest.outcomes",
    "_pytest.python_api",
    "_pytest.raises",
    "_pytest.approx",
    "_pytest.mark.structures",
    "_pytest.monkeypatch",
    "_pytest.recwarn",
]
# Modules whose classes are checked too (their methods decide outcomes); the rest by module dict only.
_PROTECTED_CLASSES_OF = _PROTECTED_MODULES[_PROTECTED_MODULES.index("reward.harness.fast_path") :]
_PROTECTED_CLASSES = (
    ("_pytest.fixtures", "FixtureFunctionDefinition"),
    ("_pytest.fixtures", "FixtureFunctionMarker"),
    ("_pytest.capture", "CaptureResult"),
)


def protected_snapshot() -> tamper.Snapshot:
    """Taken once in the fork server; every child checks against it."""
    modules = [sys.modules[name] for name in _PROTECTED_MODULES if name in sys.modules]
    for m in modules:  # warnings.warn(stacklevel=N) adds the registry to a caller's globals; this one
        m.__dict__.setdefault("__warningregistry__", {})  # is then reused in place
    spaces: list[tuple[str, Any]] = [(m.__name__, m.__dict__) for m in modules]
    for m in modules:
        if m.__name__ not in _PROTECTED_CLASSES_OF:
            continue
        for name, value in list(vars(m).items()):
            if isinstance(value, type) and getattr(value, "__module__", "") == m.__name__:
                spaces.append((f"{m.__name__}.{name}", value.__dict__))
    for module, name in _PROTECTED_CLASSES:
        value = getattr(sys.modules.get(module), name, None)
        if isinstance(value, type):
            spaces.append((f"{module}.{name}", value.__dict__))
    return tamper.snapshot(spaces)


class _SolutionFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Meta-path finder that makes `import solution` execute the program at the point the test
    module imports it, as pytest's import of solution.py would."""

    def __init__(self, path: str, source: str) -> None:
        self._path = path
        self._source = source

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != runners.SOLUTION_MODULE:
            return None
        return importlib.util.spec_from_loader(name, self, origin=self._path)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        module.__file__ = self._path
        code = compile(self._source, self._path, "exec", dont_inherit=True)
        exec(code, module.__dict__)


__all__ = ["TEST_FILENAME", "ChildSpec", "child_main", "make_emit"]
