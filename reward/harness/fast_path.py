"""Fast-path pytest harness, run inside the sandboxed child: executes a KodCode-style test module,
collects tests the way pytest does (functions, Test classes, parametrize, skip/skipif, fixtures,
xunit setup/teardown) and reports each outcome through `emit`. No pytest session is started.

Outcomes: "passed"; "failed" (AssertionError, pytest.fail, DID NOT RAISE); "error" (anything else,
setup and teardown errors included); "memory" (MemoryError). Features it does not implement raise
`Unsupported` before any test runs, and the fork server re-runs the job under real pytest.
"""

from __future__ import annotations

import inspect
import itertools
import os
import pathlib
import re
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _pytest.mark.structures import Mark, MarkDecorator, ParameterSet, get_unpacked_marks
from _pytest.outcomes import Failed, Skipped

from reward.harness.compare import describe_last
from reward.harness.fixtures import FixtureManager, Unsupported
from reward.harness.testplan import TEST_FILENAME, TEST_MODULE

Emit = Callable[..., None]
_DETAIL_CHARS = 600
SOLUTION_FILENAME = "solution.py"  # the basename the child writes the solution to


@dataclass
class Item:
    name: str  # e.g. "TestX::test_y[1-2]"
    func: Callable[..., Any]  # the plain function (unbound for methods)
    cls: type | None
    params: dict[str, Any] = field(default_factory=dict)
    fixtures: list[str] = field(default_factory=list)  # usefixtures marks
    skip: bool = False


def run_module(
    code: types.CodeType,
    namespace: dict[str, Any],
    scratch: pathlib.Path,
    emit: Emit,
    tamper_check: Callable[[], str],
) -> None:
    """Execute the test module, collect and run its tests. Raises Unsupported before running any."""
    module = types.ModuleType(TEST_MODULE)
    module.__file__ = TEST_FILENAME
    module.__dict__.update(namespace)
    try:
        exec(code, module.__dict__)
    except BaseException as exc:
        emit("error", phase="collect", detail=_describe(exc, namespace))
        return
    items = collect(module.__dict__)
    manager = FixtureManager(module.__dict__, scratch)
    runnable = [i for i in items if not i.skip]
    for item in runnable:  # every fixture must be known before the first test runs
        for name in _fixture_names(item, manager):
            if not manager.known(name, item.cls):
                raise Unsupported(f"fixture {name!r}")
    emit("collected", total=len(runnable))
    if not runnable:
        return
    _run_items(runnable, module, manager, emit, tamper_check, namespace)


def collect(ns: dict[str, Any]) -> list[Item]:
    """Test items in pytest's order: module dict order, classes expanded, parametrize multiplied."""
    module_marks = _as_marks(ns.get("pytestmark", []))
    items: list[Item] = []
    for name, obj in list(ns.items()):
        if name.startswith("test") and inspect.isfunction(obj) and getattr(obj, "__test__", True):
            items.extend(_expand(name, obj, None, module_marks))
        elif name.startswith("Test") and inspect.isclass(obj) and getattr(obj, "__test__", True):
            items.extend(_collect_class(obj, module_marks))
    return items


def _collect_class(cls: type, module_marks: list[Mark]) -> list[Item]:
    if (
        getattr(cls, "__init__", None) is not object.__init__
        or getattr(cls, "__new__", None) is not object.__new__
    ):
        return []  # pytest does not collect classes with __init__ (it warns)
    if inspect.isabstract(cls):
        raise Unsupported("abstract test class")
    marks = get_unpacked_marks(cls) + module_marks
    seen: set[str] = set()
    items: list[Item] = []
    for klass in cls.__mro__:
        for name, obj in list(vars(klass).items()):
            if name in seen:
                continue
            seen.add(name)
            if not name.startswith("test"):
                continue
            if isinstance(obj, (staticmethod, classmethod)):
                raise Unsupported("static or class test method")
            if inspect.isclass(obj):
                raise Unsupported("nested test class")
            if inspect.isfunction(obj) and getattr(obj, "__test__", True):
                items.extend(_expand(f"{cls.__name__}::{name}", obj, cls, marks))
    return items


def _expand(name: str, func: Callable[..., Any], cls: type | None, outer: list[Mark]) -> list[Item]:
    if inspect.isgeneratorfunction(func) or inspect.iscoroutinefunction(func):
        raise Unsupported("generator or async test")
    marks = get_unpacked_marks(func) + outer
    skip = False
    usefixtures: list[str] = []
    grids: list[list[tuple[tuple[str, ...], tuple[Any, ...], str]]] = []
    for mark in marks:
        if mark.name == "parametrize":
            grids.append(_parametrize(mark))
        elif mark.name == "skip":
            skip = True
        elif mark.name == "skipif":
            if any(isinstance(c, str) for c in mark.args) or "condition" in mark.kwargs:
                raise Unsupported("skipif with a string condition")
            skip = skip or any(bool(c) for c in mark.args)
        elif mark.name == "usefixtures":
            usefixtures.extend(mark.args)
        elif mark.name in ("xfail", "filterwarnings"):
            raise Unsupported(f"mark {mark.name}")
    if not grids:
        return [Item(name, func, cls, {}, usefixtures, skip)]
    items = []
    for combo in itertools.product(*grids):
        params: dict[str, Any] = {}
        ids = []
        for names, values, ident in combo:
            params.update(zip(names, values, strict=True))
            ids.append(ident)
        items.append(Item(f"{name}[{'-'.join(ids)}]", func, cls, params, usefixtures, skip))
    return items


def _parametrize(mark: Mark) -> list[tuple[tuple[str, ...], tuple[Any, ...], str]]:
    if mark.kwargs.get("indirect"):
        raise Unsupported("indirect parametrize")
    argnames = mark.args[0] if mark.args else mark.kwargs["argnames"]
    argvalues = mark.args[1] if len(mark.args) > 1 else mark.kwargs["argvalues"]
    names, force_tuple = ParameterSet._parse_parametrize_args(argnames, argvalues)
    sets = ParameterSet._parse_parametrize_parameters(argvalues, force_tuple)
    grid = []
    for index, pset in enumerate(sets):
        if pset.marks:
            raise Unsupported("marks on a parameter set")
        if len(pset.values) != len(names):
            raise Unsupported("parameter set of the wrong length")  # pytest reports it: let it
        grid.append((tuple(names), tuple(pset.values), str(pset.id) if pset.id is not None else str(index)))
    return grid


def _as_marks(value: Any) -> list[Mark]:
    values = value if isinstance(value, list) else [value]
    return [
        v.mark if isinstance(v, MarkDecorator) else v for v in values if isinstance(v, (Mark, MarkDecorator))
    ]


def _arguments(item: Item) -> list[str]:
    """Names the test function itself takes (autouse fixtures run but are not passed)."""
    params = list(inspect.signature(item.func).parameters)
    return params[1:] if item.cls is not None else params


def _fixture_names(item: Item, manager: FixtureManager) -> list[str]:
    sig = inspect.signature(item.func)
    params = list(sig.parameters.values())
    if item.cls is not None:
        params = params[1:]  # self
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise Unsupported("test with *args")
    wanted = [p.name for p in params if p.name not in item.params and p.default is p.empty]
    missing_params = set(item.params) - {p.name for p in params}
    if missing_params:
        raise Unsupported("parametrize names a missing argument")
    names = [*manager.autouse(item.cls), *item.fixtures, *wanted]
    return list(dict.fromkeys(names))


def _run_items(
    items: list[Item],
    module: types.ModuleType,
    manager: FixtureManager,
    emit: Emit,
    tamper_check: Callable[[], str],
    namespace: dict[str, Any],
) -> None:
    ns = module.__dict__
    module_error = _xunit(ns, ("setUpModule", "setup_module"), module)
    current_cls: type | None = None
    class_error: BaseException | None = None
    for item in items:
        if item.cls is not current_cls:
            if current_cls is not None:
                _end_class(current_cls, manager)
            current_cls = item.cls
            class_error = _start_class(current_cls) if current_cls is not None else None
        outcome, detail = _run_one(item, module, manager, module_error or class_error, namespace)
        broken = tamper_check()
        if broken:
            emit("test", name=item.name, outcome="error", detail=f"sandbox: tampering detected: {broken}")
            emit("abort", detail=f"tampering detected: {broken}")
            return
        emit("test", name=item.name, outcome=outcome, detail=detail)
        if outcome == "interrupted":
            return
    if current_cls is not None:
        _end_class(current_cls, manager)
    manager.teardown(2)
    _xunit(ns, ("tearDownModule", "teardown_module"), module)


def _run_one(
    item: Item,
    module: types.ModuleType,
    manager: FixtureManager,
    setup_error: BaseException | None,
    namespace: dict[str, Any],
) -> tuple[str, str]:
    if setup_error is not None:
        return "error", f"{item.name}: setup failed: {_describe(setup_error, namespace)}"
    instance = item.cls() if item.cls is not None else None
    func = item.func.__get__(instance, item.cls) if instance is not None else item.func
    try:
        _xunit_item(module.__dict__, instance, func, item)
        values = manager.setup(_fixture_names(item, manager), item.cls, instance, _safe_name(item.name))
        kwargs = {name: values[name] for name in _arguments(item) if name in values}
    except Unsupported:
        raise
    except BaseException as exc:
        manager.teardown(0)
        return _classify_setup(exc), f"{item.name}: error at setup: {_describe(exc, namespace)}"
    outcome, detail = "passed", ""
    last = namespace.get("__rl_last__")
    if isinstance(last, list):
        last.clear()  # a failed comparison of an earlier test must not describe this test's failure
    try:
        func(**{**kwargs, **item.params})
    except BaseException as exc:
        outcome, detail = _classify(exc), f"{item.name}: {_describe(exc, namespace)}"
    errors = manager.teardown(0)
    errors += _xunit_item_teardown(module.__dict__, instance, func, item)
    if errors and outcome == "passed":
        outcome, detail = "error", f"{item.name}: error at teardown: {_describe(errors[0], namespace)}"
    return outcome, detail


def _classify(exc: BaseException) -> str:
    if isinstance(exc, (AssertionError, Failed)):
        return "failed"
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "error"  # Skipped raised at run time comes from the solution (the plan refuses skip calls)


def _classify_setup(exc: BaseException) -> str:
    return "memory" if isinstance(exc, MemoryError) else "error"


def _xunit(ns: dict[str, Any], names: tuple[str, ...], arg: Any) -> BaseException | None:
    for name in names:
        func = ns.get(name)
        if callable(func):
            try:
                _call_optional_arg(func, arg)
            except BaseException as exc:
                return exc
            return None
    return None


def _start_class(cls: type) -> BaseException | None:
    func = getattr(cls, "setup_class", None)
    if func is None:
        return None
    try:
        _call_optional_arg(func, cls, bound=True)
    except BaseException as exc:
        return exc
    return None


def _end_class(cls: type, manager: FixtureManager) -> None:
    manager.teardown(1)
    func = getattr(cls, "teardown_class", None)
    if func is not None:
        try:
            _call_optional_arg(func, cls, bound=True)
        except BaseException:
            pass  # pytest reports it as an error of the last test; rare enough to ignore here


def _xunit_item(ns: dict[str, Any], instance: Any, func: Any, item: Item) -> None:
    if instance is not None:
        setup = getattr(instance, "setup_method", None)
        if setup is not None:
            _call_optional_arg(setup, func, bound=True)
    elif callable(ns.get("setup_function")):
        _call_optional_arg(ns["setup_function"], func)


def _xunit_item_teardown(ns: dict[str, Any], instance: Any, func: Any, item: Item) -> list[BaseException]:
    target = (
        getattr(instance, "teardown_method", None) if instance is not None else ns.get("teardown_function")
    )
    if not callable(target):
        return []
    try:
        _call_optional_arg(target, func, bound=instance is not None)
    except BaseException as exc:
        return [exc]
    return []


def _call_optional_arg(func: Callable[..., Any], arg: Any, bound: bool = False) -> None:
    """pytest passes the module/class/function to xunit hooks only when they accept an argument."""
    try:
        n = len(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        n = 1
    func(arg) if n >= 1 else func()


def _safe_name(name: str) -> str:
    return re.sub(r"[\W]", "_", name)[:30]


def _solution_line(frame: traceback.FrameSummary) -> str:
    """Where in the solution an exception was raised: the line number and its code, for feedback."""
    try:
        code = (frame.line or "").strip()
    except Exception:  # the line is read lazily from the solution file
        code = ""
    if len(code) > 80:
        code = code[:77] + "..."
    return f" (solution line {frame.lineno}: {code})" if code else f" (solution line {frame.lineno})"


def _describe(exc: BaseException, namespace: dict[str, Any]) -> str:
    """One line for the verdict: exception type, message, the failing line of the test."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    if isinstance(exc, AssertionError) and not message:
        message = describe_last(namespace.get("__rl_last__", []))
    where = solution_at = ""
    tb = exc.__traceback__
    for frame_summary in traceback.extract_tb(tb, limit=50) if tb else []:
        if frame_summary.filename == TEST_FILENAME:
            where = f" (test line {frame_summary.lineno})"
        elif os.path.basename(frame_summary.filename) == SOLUTION_FILENAME:
            solution_at = _solution_line(frame_summary)
    where = f"{solution_at}{where}"
    text = f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"
    if isinstance(exc, Skipped):
        text = "skipped at run time by the code under test: " + text
    return text[:_DETAIL_CHARS]
