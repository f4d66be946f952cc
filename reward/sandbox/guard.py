"""In-process guard of a sandboxed run: an audit hook that stops solution code from reading the tests'
frames and constants, forging code, loading ctypes or spawning processes.

The OS layers (uid, limits, namespaces) are the real walls; this closes what they cannot see: the
solution and its tests share one interpreter. "Solution context" means a frame of the solution's code
(or code it compiled) is on the stack above the child's entry frame, or the event comes from a thread
the harness did not start. The hook runs on a private copy of this module (functions, tables and
builtins copied at install), so rebinding `reward.sandbox.guard._check` or a builtin changes nothing it does,
and it never calls code of the solution's making (no isinstance, hash, repr or getattr on its objects).
"""

from __future__ import annotations

import builtins
import gc
import importlib._bootstrap_external
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reward.sandbox.guard_rules import (
    _AF_UNIX,
    _ATTR_READERS,
    _CALL_OPS,
    _FRAME_EVENTS,
    _FRAME_HANDOUTS,
    _HANDOUT_MODULES,
    _IGNORED,
    _PROCESS_EVENTS,
    installed_roots,
)

# Bound once at import: the hook looks nothing up on a module the solution can reach.
_getframe = sys._getframe
_get_ident = threading.get_ident
_stat = os.stat
_fspath = os.fspath
_addaudithook = sys.addaudithook
_FunctionType = types.FunctionType
_CodeType = types.CodeType
_CODE_OWNERS = (
    (types.FunctionType, "__code__"),
    (types.GeneratorType, "gi_code"),
    (types.CoroutineType, "cr_code"),
    (types.AsyncGeneratorType, "ag_code"),
)
_COMPILE_BYTECODE = importlib._bootstrap_external._compile_bytecode.__code__  # type: ignore[attr-defined]
_SOURCE_GET_CODE = importlib._bootstrap_external.SourceLoader.get_code.__code__
_TYPE_DICT = type.__dict__["__dict__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]


class SandboxViolation(PermissionError):
    """Raised into the solution when it does something the sandbox forbids."""


@dataclass
class GuardConfig:
    """What the armed hook needs to know about one run (copied into the hook's state when armed)."""

    solution_files: set[str]  # code filenames that count as the solution's (grows as it compiles)
    trusted_files: frozenset[str]  # filenames of preloaded modules and the test module: never forgeable
    protected_paths: frozenset[str] = frozenset()  # files the solution must not open (a test file on disk)
    block_sockets: bool = False  # True where no network namespace isolates the run
    block_processes: bool = True
    main_thread: int = field(default_factory=threading.get_ident)
    test_files: frozenset[str] = frozenset()  # trusted, but test code: never treated as library code
    trusted_types: frozenset[type] = frozenset()  # types that existed before the run
    protect_frames: bool = True  # False in the isolated judge's program process: no judge state to hide


def install() -> Callable[[GuardConfig], None]:
    """Add the audit hook (once, in the fork server, after the preload) and return the function that
    arms it in a child. Keep the returned function in a local: whoever holds it can re-arm the hook."""
    return _private_globals()["_install"](_scan_loaded_code())


def _private_globals() -> dict[str, Any]:
    """This module's globals with every function rebuilt on a copy of them (and of the builtins)."""
    shared = globals()
    private: dict[str, Any] = {}

    def rebuild(obj: Any) -> Any:
        if type(obj) is types.FunctionType and obj.__globals__ is shared:
            func = types.FunctionType(obj.__code__, private, obj.__name__, obj.__defaults__, obj.__closure__)
            func.__kwdefaults__ = obj.__kwdefaults__
            return func
        return obj

    for name, value in shared.items():
        private[name] = {k: rebuild(v) for k, v in value.items()} if type(value) is dict else rebuild(value)
    private["__builtins__"] = dict(vars(builtins))
    return private


def _scan_loaded_code() -> tuple[list[types.CodeType], frozenset[int], dict[int, frozenset[int]]]:
    """Every code object of the loaded functions, kept referenced so that their ids stay unique: ids of
    those with a pseudo filename ("<string>": dataclass and namedtuple methods, which solution code may
    later claim but which stay trusted), and the `_getframe(...)` call offsets of the others."""
    kept: list[types.CodeType] = []
    pseudo: set[int] = set()
    calls: dict[int, frozenset[int]] = {}
    seen: set[int] = set()
    stack = [obj.__code__ for obj in gc.get_objects() if type(obj) is types.FunctionType]
    while stack:
        code = stack.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        kept.append(code)
        if code.co_filename.startswith("<"):
            pseudo.add(id(code))
        elif "_getframe" in code.co_names:
            calls[id(code)] = _getframe_call_offsets(code)
        stack.extend(c for c in code.co_consts if type(c) is types.CodeType)
    return kept, frozenset(pseudo), calls


def _getframe_call_offsets(code: types.CodeType) -> frozenset[int]:
    """Offsets of the call instructions of `<x>._getframe(...)` expressions: the first call that starts
    where the `_getframe` attribute load starts (PRECALL, where 3.11 runs builtins, and its CALL)."""
    import dis

    starts = set()
    offsets = set()
    for ins in dis.get_instructions(code):
        pos = ins.positions
        if pos is None:
            continue
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval == "_getframe":
            starts.add((pos.lineno, pos.col_offset))
        elif ins.opname in _CALL_OPS and (pos.lineno, pos.col_offset) in starts:
            offsets.add(ins.offset)
            if ins.opname != "PRECALL":
                starts.discard((pos.lineno, pos.col_offset))
    return frozenset(offsets)


# ---------------------------------------------------------------------------------------------
# Everything below runs on the private globals.


def _install(scan: tuple[list[types.CodeType], frozenset[int], dict[int, frozenset[int]]]) -> Any:
    kept, pseudo, calls = scan
    state: dict[str, Any] = {"armed": False, "cfg": None, "floor": None, "rules": None, "kept": kept}
    busy: set[int] = set()  # threads inside the hook (the frame walk raises audit events of its own)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not state["armed"] or event in _IGNORED:
            return
        me = _get_ident()
        if me in busy:
            return
        cfg = state["cfg"]
        _refuse_always(event, args, cfg)
        if not _sensitive(event, cfg):
            return
        busy.add(me)
        try:
            trigger = _getframe(1)  # the frame whose operation raised the event
            rules = state["rules"]
            if _in_solution_context(trigger, cfg, rules, state["floor"]):
                _check(event, args, cfg, rules, trigger)
        finally:
            busy.discard(me)

    def arm(config: GuardConfig) -> None:
        """Only frames above the caller's count: the server's own frames below it (its `python -c`
        module is "<string>", a name solution code may claim) are never solution context."""
        state["cfg"] = {
            "solution_files": config.solution_files,
            "trusted_files": config.trusted_files,
            "protected": config.protected_paths,
            "block_sockets": config.block_sockets,
            "block_processes": config.block_processes,
            "main_thread": config.main_thread,
            "test_files": config.test_files,
            "trusted_types": config.trusted_types,
            "frames": config.protect_frames,
        }
        state["rules"] = {
            "handouts": _by_path(_FRAME_HANDOUTS),
            "handout_files": frozenset(_module_file(m) for m in _HANDOUT_MODULES) - {""},
            "readers": _by_path(_ATTR_READERS),
            "pseudo": pseudo,
            "calls": calls,
            "type_ids": None,
        }
        state["floor"] = _getframe(1)
        state["armed"] = True

    _addaudithook(hook)
    return arm


def _module_file(name: str) -> str:
    path = getattr(sys.modules.get(name), "__file__", None)
    return path if type(path) is str else ""


def _by_path(table: dict[tuple[str, str], str | None]) -> dict[tuple[str, str], str | None]:
    return {(_module_file(m), f): parent for (m, f), parent in table.items() if _module_file(m)}


def _refuse_always(event: str, args: tuple[Any, ...], cfg: dict[str, Any]) -> None:
    if event.startswith("ctypes."):
        raise SandboxViolation(f"sandbox: {event} is not allowed")
    if event.startswith("socket.") and cfg["block_sockets"]:
        if event == "socket.__new__" and type(args[1]) is int and args[1] == _AF_UNIX:
            return  # socketpair (asyncio's self-pipe); bind, connect and sendto stay refused
        raise SandboxViolation(f"sandbox: network access ({event}) is not allowed")


def _sensitive(event: str, cfg: dict[str, Any]) -> bool:
    return (
        (cfg["frames"] and (event in _FRAME_EVENTS or (event in _CHECKS and event != "open")))
        or (event == "open" and bool(cfg["protected"]))
        or (cfg["block_processes"] and event in _PROCESS_EVENTS)
    )


def _in_solution_context(frame: Any, cfg: dict[str, Any], rules: dict[str, Any], floor: Any) -> bool:
    """Solution code on the stack above the arming frame, or a thread the harness did not start. A
    filename that is not a plain str can only come from code the solution built."""
    if _get_ident() != cfg["main_thread"]:
        return True
    tainted = cfg["solution_files"]
    pseudo = rules["pseudo"]
    while frame is not None and frame is not floor:
        code = frame.f_code
        name = code.co_filename
        if type(name) is not str or (name in tainted and id(code) not in pseudo):
            return True
        frame = frame.f_back
    return False


def _check(event: str, args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    """Runs only in solution context; raises to refuse the operation."""
    if event in _FRAME_EVENTS:
        if event == "sys._getframe" and _getframe_allowed(frame, cfg, rules):
            return
        if event == "marshal.loads" and _import_of_installed_module(frame):
            return
        raise SandboxViolation(f"sandbox: {event} is not allowed in solution code")
    if event in _PROCESS_EVENTS:
        raise SandboxViolation(f"sandbox: {event} is not allowed in solution code")
    _CHECKS[event](args, cfg, rules, frame)


def _import_of_installed_module(frame: Any) -> bool:
    """The import system unmarshalling a cached .pyc of the standard library or site-packages (both
    read-only in the sandbox): `import configparser` in solution code. A .pyc anywhere else (one the
    solution wrote to its scratch dir) stays refused: it could hold code forged under any file name."""
    caller = frame.f_back
    if frame.f_code is not _COMPILE_BYTECODE or caller is None or caller.f_code is not _SOURCE_GET_CODE:
        return False
    path = caller.f_locals.get("bytecode_path")
    if type(path) is not str or ".." in path:
        return False
    return any(path.startswith(root + "/") for root in _INSTALLED_ROOTS)


def _is_library(code: types.CodeType, cfg: dict[str, Any]) -> bool:
    """Code of a preloaded module's file: never the test's, never compiled by the solution."""
    name = code.co_filename
    return (
        type(name) is str
        and type(code.co_name) is str
        and name in cfg["trusted_files"]
        and name not in cfg["test_files"]
        and name not in cfg["solution_files"]
    )


def _parent_is(frame: Any, parent: str | None) -> bool:
    """Called by the function `parent` of the same file (names compared as exact strs only)."""
    back = frame.f_back
    if parent is None or back is None:
        return False
    name, filename = back.f_code.co_name, back.f_code.co_filename
    return (
        type(name) is str
        and type(filename) is str
        and name == parent
        and filename == frame.f_code.co_filename
    )


def _getframe_allowed(frame: Any, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    code = frame.f_code
    if not _is_library(code, cfg) or code.co_filename in rules["handout_files"]:
        return False
    offsets = rules["calls"].get(id(code))
    if offsets is None or frame.f_lasti not in offsets:
        return False
    key = (code.co_filename, code.co_name)
    return key not in rules["handouts"] or _parent_is(frame, rules["handouts"][key])


def _reader_allowed(frame: Any, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    code = frame.f_code
    if not _is_library(code, cfg):
        return False
    key = (code.co_filename, code.co_name)
    if key not in rules["readers"]:
        return False
    parent = rules["readers"][key]
    return parent is None or _parent_is(frame, parent)


def _check_getattr(args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    target, name = args[0], args[1]
    if not (_owned_by_solution(target, cfg, rules) or _reader_allowed(frame, cfg, rules)):
        raise SandboxViolation(f"sandbox: reading {_type_name(type(target))}.{_plain(name)} is not allowed")


def _check_setattr(args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    """Functions only when the solution compiled them (`__code__`, `__defaults__`); classes, and the
    `__class__` of instances, only when made during the run and not by the test."""
    target, name = args[0], args[1]
    tp = type(target)
    if _owned_by_solution(target, cfg, rules):
        return
    if name == "__class__" and not issubclass(tp, type) and _made_in_run(tp, cfg, rules):
        return
    what = _type_name(target) if issubclass(tp, type) else f"a {_type_name(tp)}"
    raise SandboxViolation(f"sandbox: setting {_plain(name)} on {what} is not allowed")


def _check_compile(args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    """Code the solution compiles becomes solution code; it may not pose as a trusted module, nor use a
    str subclass as its name (whose __hash__ would run inside this hook)."""
    filename = args[1]
    if type(filename) is bytes:
        filename = filename.decode("utf-8", "replace")
    if type(filename) is not str:
        raise SandboxViolation("sandbox: compiling code under a filename that is not a str")
    if filename in cfg["trusted_files"]:
        raise SandboxViolation(f"sandbox: compiling code as {filename!r} is not allowed")
    cfg["solution_files"].add(filename)


def _check_function(args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    code = args[0]
    if type(code) is not _CodeType or not _is_solution_code(code, cfg, rules):
        raise SandboxViolation("sandbox: building functions from foreign code is not allowed")


def _check_open(args: tuple[Any, ...], cfg: dict[str, Any], rules: dict[str, Any], frame: Any) -> None:
    """The protected files, by inode (any spelling, symlink or hard link of them)."""
    path = args[0]
    tp = type(path)
    if tp is int:
        return
    if issubclass(tp, str):
        path = "".join([path])  # a plain copy of a str subclass: none of its methods is called
    elif issubclass(tp, bytes):
        path = b"".join([path])
    elif _is_trusted_type(tp, cfg, rules):
        path = _fspath(path)  # pathlib.Path and the like: library code
    else:  # a path object of the program's making: its __fspath__ would run inside this hook
        raise SandboxViolation("sandbox: open() of a path object defined by the program is not allowed")
    try:
        opened = _stat(path)
    except (OSError, ValueError):
        return  # nothing there: not a protected file
    for protected in cfg["protected"]:
        try:
            st = _stat(protected)
        except OSError:
            continue
        if st.st_ino == opened.st_ino and st.st_dev == opened.st_dev:
            raise SandboxViolation("sandbox: reading the test file is not allowed")


_CHECKS: dict[str, Callable[..., None]] = {
    "object.__getattr__": _check_getattr,
    "object.__setattr__": _check_setattr,
    "compile": _check_compile,
    "code.__new__": _check_compile,
    "function.__new__": _check_function,
    "open": _check_open,
}


def _is_solution_code(code: types.CodeType, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    name = code.co_filename
    return type(name) is str and name in cfg["solution_files"] and id(code) not in rules["pseudo"]


def _owned_by_solution(target: Any, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    """Code, functions and generators compiled by the solution; classes made in the run. Dispatches on
    the exact type (by identity: hashing a class could run its metaclass's code)."""
    tp = type(target)
    if tp is _CodeType:
        return _is_solution_code(target, cfg, rules)
    for owner, attr in _CODE_OWNERS:
        if tp is owner:
            return _is_solution_code(getattr(target, attr), cfg, rules)
    if issubclass(tp, type):
        return _made_in_run(target, cfg, rules)
    return False


def _made_in_run(cls: type, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    """A class that did not exist before the run and has no method written in the test file: made by
    the solution or by the library on its behalf (namedtuple, dataclass, Enum, NamedTuple)."""
    if _is_trusted_type(cls, cfg, rules):
        return False
    for value in _TYPE_DICT.__get__(cls, type).values():
        kind = type(value)
        func = value.__func__ if kind is staticmethod or kind is classmethod else value
        if type(func) is _FunctionType:
            name = func.__code__.co_filename
            if type(name) is not str or name in cfg["test_files"]:
                return False
    return True


def _is_trusted_type(cls: type, cfg: dict[str, Any], rules: dict[str, Any]) -> bool:
    if rules["type_ids"] is None:  # built on first use: most runs never need it
        rules["type_ids"] = frozenset(map(id, cfg["trusted_types"]))
    return id(cls) in rules["type_ids"]


def _type_name(cls: type) -> str:
    """A class's name without calling anything its metaclass could override."""
    return _plain(_TYPE_QUALNAME.__get__(cls, type))


def _plain(text: Any) -> str:
    return "".join([text]) if issubclass(type(text), str) else "?"


def trusted_filenames(extra: Iterable[str] = ()) -> frozenset[str]:
    """Filenames of every loaded module: code compiled by the solution may not claim them."""
    names = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    names.discard(None)
    return frozenset({str(n) for n in names} | set(extra))


_INSTALLED_ROOTS = installed_roots()  # the read-only import roots (see isolation.importable_dirs)
