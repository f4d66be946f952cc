"""Fixtures for the fast-path harness: the file's own `@pytest.fixture` functions (function, class,
module and session scope; return or yield) and the builtins tests use most: tmp_path,
tmp_path_factory, capsys, monkeypatch. Anything else raises `Unsupported` and the run falls back
to real pytest.
"""

from __future__ import annotations

import inspect
import io
import itertools
import pathlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from _pytest.capture import CaptureResult
from _pytest.fixtures import FixtureFunctionDefinition
from _pytest.monkeypatch import MonkeyPatch

BUILTIN_FIXTURES = frozenset({"tmp_path", "tmp_path_factory", "capsys", "monkeypatch"})
_SCOPES = {"function": 0, "class": 1, "module": 2, "package": 2, "session": 2}


class Unsupported(Exception):
    """The test file uses a pytest feature the fast path does not implement: run real pytest."""


@dataclass
class FixtureDef:
    name: str
    func: Callable[..., Any]  # the undecorated function
    scope: int  # 0 function, 1 class, 2 module/session
    autouse: bool
    in_class: bool  # defined in a test class: bound to the test instance


@dataclass
class _Active:
    value: Any
    finalizer: Callable[[], None] | None


@dataclass
class _ScopeCache:
    values: dict[str, _Active] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def fixture_defs(namespace: dict[str, Any], in_class: bool) -> dict[str, FixtureDef]:
    """The fixtures a module or class namespace defines, by fixture name."""
    defs: dict[str, FixtureDef] = {}
    for value in list(namespace.values()):
        if not isinstance(value, FixtureFunctionDefinition):
            continue
        marker = value._fixture_function_marker
        if marker.params is not None:
            raise Unsupported("parametrized fixture")
        scope = marker.scope if isinstance(marker.scope, str) else "dynamic"
        if scope not in _SCOPES:
            raise Unsupported(f"fixture scope {scope}")
        name = marker.name or value.name
        defs[name] = FixtureDef(name, value._get_wrapped_function(), _SCOPES[scope], marker.autouse, in_class)
    return defs


class TmpPathFactory:
    """Enough of pytest's TempPathFactory: numbered directories under the run's scratch dir."""

    def __init__(self, base: pathlib.Path) -> None:
        self._base = base
        self._counter = itertools.count()

    def getbasetemp(self) -> pathlib.Path:
        self._base.mkdir(parents=True, exist_ok=True)
        return self._base

    def mktemp(self, basename: str, numbered: bool = True) -> pathlib.Path:
        path = self.getbasetemp() / (f"{basename}{next(self._counter)}" if numbered else basename)
        path.mkdir()
        return path


class CaptureFixture:
    """pytest's `capsys`: swaps sys.stdout/sys.stderr for in-memory text streams during the test."""

    def __init__(self) -> None:
        self._out = _capture_stream()
        self._err = _capture_stream()
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._out, self._err

    def readouterr(self) -> CaptureResult[str]:
        out, err = _drain(self._out), _drain(self._err)
        return CaptureResult(out, err)

    def close(self) -> None:
        sys.stdout, sys.stderr = self._saved


def _capture_stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="", write_through=True)


def _drain(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    data = buffer.getvalue().decode("utf-8", "replace")
    buffer.seek(0)
    buffer.truncate()
    return data


class FixtureManager:
    """Resolves and caches fixtures for one test module, tearing them down scope by scope."""

    def __init__(self, module_ns: dict[str, Any], scratch: pathlib.Path) -> None:
        self._module_defs = fixture_defs(module_ns, in_class=False)
        self._factory = TmpPathFactory(scratch / "pytest-tmp")
        self._caches = [_ScopeCache(), _ScopeCache(), _ScopeCache()]
        self._class_defs: dict[type, dict[str, FixtureDef]] = {}

    def defs_for(self, cls: type | None) -> dict[str, FixtureDef]:
        if cls is None:
            return self._module_defs
        if cls not in self._class_defs:
            merged = dict(self._module_defs)
            for klass in reversed(cls.__mro__):
                merged.update(fixture_defs(dict(vars(klass)), in_class=True))
            self._class_defs[cls] = merged
        return self._class_defs[cls]

    def autouse(self, cls: type | None) -> list[str]:
        return [name for name, d in self.defs_for(cls).items() if d.autouse]

    def known(self, name: str, cls: type | None) -> bool:
        return name in BUILTIN_FIXTURES or name in self.defs_for(cls)

    def setup(self, names: list[str], cls: type | None, instance: Any, test_name: str) -> dict[str, Any]:
        """Values for `names` (and what they need), set up in dependency order."""
        values: dict[str, Any] = {}
        for name in names:
            values[name] = self._get(name, cls, instance, test_name, ())
        return values

    def teardown(self, scope: int) -> list[BaseException]:
        """Finalize every fixture of `scope` (and narrower), newest first; returns their errors."""
        errors: list[BaseException] = []
        for level in range(scope + 1):
            cache = self._caches[level]
            for name in reversed(cache.order):
                fin = cache.values[name].finalizer
                if fin is not None:
                    try:
                        fin()
                    except BaseException as exc:
                        errors.append(exc)
            cache.values.clear()
            cache.order.clear()
        return errors

    def _get(self, name: str, cls: type | None, instance: Any, test_name: str, chain: tuple[str, ...]) -> Any:
        if name in chain:
            raise Unsupported(f"recursive fixture {name}")
        defs = self.defs_for(cls)
        if name in defs:
            fdef = defs[name]
            cache = self._caches[fdef.scope]
            if name not in cache.values:
                cache.values[name] = self._create(fdef, cls, instance, test_name, (*chain, name))
                cache.order.append(name)
            return cache.values[name].value
        if name in BUILTIN_FIXTURES:
            cache = self._caches[2 if name == "tmp_path_factory" else 0]
            if name not in cache.values:
                cache.values[name] = self._builtin(name, test_name)
                cache.order.append(name)
            return cache.values[name].value
        raise Unsupported(f"fixture {name!r}")

    def _create(
        self, fdef: FixtureDef, cls: type | None, instance: Any, test_name: str, chain: tuple[str, ...]
    ) -> _Active:
        func = fdef.func
        if fdef.in_class and instance is not None:
            func = func.__get__(instance, type(instance))
        params = [
            p for p in inspect.signature(func).parameters.values() if p.default is inspect.Parameter.empty
        ]
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise Unsupported("fixture with *args")
        kwargs = {p.name: self._get(p.name, cls, instance, test_name, chain) for p in params}
        if inspect.isgeneratorfunction(func):
            gen = func(**kwargs)
            value = next(gen)
            return _Active(value, lambda: _finish_generator(gen, fdef.name))
        if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
            raise Unsupported("async fixture")
        return _Active(func(**kwargs), None)

    def _builtin(self, name: str, test_name: str) -> _Active:
        if name == "tmp_path":
            return _Active(self._factory.mktemp(test_name[:30], numbered=True), None)
        if name == "tmp_path_factory":
            return _Active(self._factory, None)
        if name == "capsys":
            cap = CaptureFixture()
            return _Active(cap, cap.close)
        patcher = MonkeyPatch()
        return _Active(patcher, patcher.undo)


def _finish_generator(gen: Iterator[Any], name: str) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    raise RuntimeError(f"fixture {name} yielded more than once")
