"""In-process guard of a sandboxed run: an audit hook that stops solution code from reading the tests'
frames and constants, forging code, loading ctypes or spawning processes, plus tamper snapshots.

The OS layers (uid, limits, namespaces) are the real walls; this closes what they cannot see: the
solution and its tests share one interpreter. "Solution context" means a frame of the solution's code
(or code it compiled) is on the stack, or the event comes from a thread the harness did not start.
The hook's state lives only in closures held by the fork server's frames, never in module globals.
"""

from __future__ import annotations

import operator
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# Events that hand out frames, code constants or other objects' internals.
_FRAME_EVENTS = frozenset(
    {
        "sys._getframe",
        "sys._current_frames",
        "sys._current_exceptions",
        "sys.settrace",
        "sys.setprofile",
        "gc.get_referrers",
        "gc.get_referents",
        "gc.get_objects",
        "marshal.loads",
        "marshal.load",
    }
)
_PROCESS_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "subprocess.Popen",
        "pty.spawn",
        "os.startfile",
        "os.setns",
        "os.unshare",
    }
)
# Stdlib functions that read a caller's frame for their own bookkeeping and hand no frame back:
# (module, function) -> the function of the same file that must be calling it (None: any caller).
# `logging.currentframe` itself returns a frame, so it is allowed only when `findCaller` calls it.
# Matched on the modules' real file paths, which solution code can never compile under.
_ALLOWED_FRAME_CALLERS: dict[tuple[str, str], str | None] = {
    ("collections", "namedtuple"): None,
    ("enum", "_create_"): None,
    ("typing", "_caller"): None,
    ("logging", "<lambda>"): "findCaller",
    ("logging", "findCaller"): None,
    ("logging", "_is_internal_frame"): "findCaller",
    ("warnings", "warn"): None,
    # traceback.print_exc()/format_exc() in solution code: frames are read and turned into strings;
    # the generator that yields frames is allowed only when the summarizer is the one consuming it.
    ("traceback", "_extract_from_extended_frame_gen"): None,
    ("traceback", "_walk_tb_with_full_positions"): "_extract_from_extended_frame_gen",
    ("traceback", "walk_tb"): "_extract_from_extended_frame_gen",
}


def _allowed_callers() -> dict[tuple[str, str], str | None]:
    allowed = {}
    for (module, func), parent in _ALLOWED_FRAME_CALLERS.items():
        path = getattr(sys.modules.get(module), "__file__", None)
        if path:
            allowed[(path, func)] = parent
    return allowed


# Frequent events that never matter to the guard: skipped first, before any other test.
_IGNORED = frozenset(
    {"builtins.id", "import", "os.listdir", "os.scandir", "marshal.dumps", "sys._getframemodulename"}
)


class SandboxViolation(PermissionError):
    """Raised into the solution when it does something the sandbox forbids."""


@dataclass
class GuardConfig:
    """What the armed hook needs to know about one run."""

    solution_files: set[str]  # code filenames that count as the solution's (grows as it compiles)
    trusted_files: frozenset[str]  # filenames of preloaded modules and the test module: never forgeable
    protected_paths: frozenset[str] = frozenset()  # files the solution must not open (a test file on disk)
    block_sockets: bool = False  # True where no network namespace isolates the run
    block_processes: bool = True
    main_thread: int = field(default_factory=threading.get_ident)


def install() -> Callable[[GuardConfig], None]:
    """Add the audit hook (once, in the fork server) and return the function that arms it in a child.

    Keep the returned function in a local: whoever holds it can re-arm the hook.
    """
    state: dict[str, Any] = {"armed": False, "busy": False, "cfg": None}
    getframe = sys._getframe
    allowed_callers = _allowed_callers()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not state["armed"] or state["busy"] or event in _IGNORED:
            return
        cfg: GuardConfig = state["cfg"]
        _refuse_always(event, cfg)
        if not _sensitive(event, cfg):
            return
        state["busy"] = True  # the frame walk below raises audit events of its own
        try:
            trigger = getframe(1)  # the frame whose operation raised the event
            if _in_solution_context(trigger, cfg):
                _check(event, args, cfg, lambda: _caller_allowed(trigger, allowed_callers))
        finally:
            state["busy"] = False

    def arm(cfg: GuardConfig) -> None:
        state["cfg"] = cfg
        state["armed"] = True

    sys.addaudithook(hook)
    return arm


def _in_solution_context(frame: Any, cfg: GuardConfig) -> bool:
    """A frame of solution code anywhere on the stack, or a thread the harness did not start."""
    if threading.get_ident() != cfg.main_thread:
        return True
    tainted = cfg.solution_files
    while frame is not None:
        if frame.f_code.co_filename in tainted:
            return True
        frame = frame.f_back
    return False


def _caller_allowed(frame: Any, allowed: dict[tuple[str, str], str | None]) -> bool:
    """Is the code that raised the event one of the stdlib bookkeeping functions (and, where it
    matters, called by the right function of the same file)?"""
    code = frame.f_code
    key = (code.co_filename, code.co_name)
    if key not in allowed:
        return False
    parent = allowed[key]
    back = frame.f_back
    return parent is None or (
        back is not None and back.f_code.co_name == parent and back.f_code.co_filename == code.co_filename
    )


def _refuse_always(event: str, cfg: GuardConfig) -> None:
    if event.startswith("ctypes."):
        raise SandboxViolation(f"sandbox: {event} is not allowed")
    if event.startswith("socket.") and cfg.block_sockets:
        raise SandboxViolation(f"sandbox: network access ({event}) is not allowed")


def _sensitive(event: str, cfg: GuardConfig) -> bool:
    return (
        event in _FRAME_EVENTS
        or (event in _CHECKS and (event != "open" or bool(cfg.protected_paths)))
        or (cfg.block_processes and event in _PROCESS_EVENTS)
    )


def _check(event: str, args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    """Runs only in solution context; raises to refuse the operation."""
    if event in _FRAME_EVENTS:
        if event == "sys._getframe" and caller_allowed():
            return
        raise SandboxViolation(f"sandbox: {event} is not allowed in solution code")
    if event in _PROCESS_EVENTS:
        raise SandboxViolation(f"sandbox: {event} is not allowed in solution code")
    _CHECKS[event](args, cfg, caller_allowed)


def _check_getattr(args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    target, name = args[0], args[1]
    if not (_owned_by_solution(target, cfg) or caller_allowed()):
        raise SandboxViolation(f"sandbox: reading {type(target).__name__}.{name} is not allowed")


def _check_setattr(args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    target, name = args[0], args[1]
    if not _owned_by_solution(target, cfg):
        raise SandboxViolation(f"sandbox: setting {name} on {target!r:.60} is not allowed")


def _check_compile(args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    _claim_filename(args[1], cfg)


def _check_function(args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    if getattr(args[0], "co_filename", None) not in cfg.solution_files:
        raise SandboxViolation("sandbox: building functions from foreign code is not allowed")


def _check_open(args: tuple[Any, ...], cfg: GuardConfig, caller_allowed: Callable[[], bool]) -> None:
    path = args[0]
    if isinstance(path, (str, bytes)) and _resolve(path) in cfg.protected_paths:
        raise SandboxViolation("sandbox: reading the test file is not allowed")


_CHECKS: dict[str, Callable[[tuple[Any, ...], GuardConfig, Callable[[], bool]], None]] = {
    "object.__getattr__": _check_getattr,
    "object.__setattr__": _check_setattr,
    "compile": _check_compile,
    "code.__new__": _check_compile,
    "function.__new__": _check_function,
    "open": _check_open,
}


def _claim_filename(filename: Any, cfg: GuardConfig) -> None:
    """Code the solution compiles becomes solution code; it may not pose as a trusted module."""
    if isinstance(filename, bytes):
        filename = filename.decode("utf-8", "replace")
    if not isinstance(filename, str):
        filename = str(filename)
    if filename in cfg.trusted_files:
        raise SandboxViolation(f"sandbox: compiling code as {filename!r} is not allowed")
    cfg.solution_files.add(filename)


def _owned_by_solution(target: Any, cfg: GuardConfig) -> bool:
    code = getattr(target, "__code__", None) if not hasattr(target, "co_filename") else target
    if code is None and hasattr(target, "gi_code"):
        code = target.gi_code
    filename = getattr(code, "co_filename", None)
    return filename in cfg.solution_files


def _resolve(path: str | bytes) -> str:
    import os

    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    return os.path.realpath(path)


def trusted_filenames(extra: Iterable[str] = ()) -> frozenset[str]:
    """Filenames of every loaded module: code compiled by the solution may not claim them."""
    names = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    names.discard(None)
    return frozenset({str(n) for n in names} | set(extra))


# ---------------------------------------------------------------------------------------------
# Tamper snapshots: identities of builtins, pytest's namespace and the harness's own functions,
# checked after every test. Legit code never rebinds them; a solution that does gets `error`.


Snapshot = list[tuple[str, Any, list[Any], list[Any]]]


def snapshot(namespaces: Iterable[tuple[str, Any]]) -> Snapshot:
    """Keys and values of each namespace (a dict or a class's mappingproxy), which is kept live."""
    return [(label, ns, list(ns), list(ns.values())) for label, ns in namespaces]


def tampered(
    snap: Snapshot, _len: Any = len, _all: Any = all, _map: Any = map, _is: Any = operator.is_
) -> str:
    """ "" when every snapshotted namespace still holds the same objects, else which one changed.

    Identity only (never a rebound object's `__eq__`), in C (map/is_, no audit events), with
    builtins bound as defaults so a program that rebinds them cannot blind the check."""
    for label, ns, keys, values in snap:
        if (
            _len(ns) != _len(keys)
            or not _all(_map(_is, ns, keys))
            or not _all(_map(_is, ns.values(), values))
        ):
            return f"{label} was modified"
    return ""
