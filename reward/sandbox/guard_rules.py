"""The guard's tables (reward/sandbox/guard.py): which audit events matter, which library call sites may
hand out frames or read frame attributes on the solution's behalf. Data only; guard.py copies them
into the hook's private globals at install.
"""

from __future__ import annotations

import os
import sys
import sysconfig

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
# Frequent events that never matter to the guard: skipped first, before any other test.
_IGNORED = frozenset(
    {"builtins.id", "import", "os.listdir", "os.scandir", "marshal.dumps", "sys._getframemodulename"}
)
# Library code calls sys._getframe for its own bookkeeping on the solution's behalf (namedtuple, enum,
# typing and typing_extensions read the caller's module name; traceback.format_stack formats frames).
# Allowed when the frame raising the event is a preloaded module's code executing a
# `<x>._getframe(...)` call written in its own source: not a callable it was handed
# (map(sys._getframe, ...) consumed inside namedtuple, a mock's side effect), and not one of these,
# which hand the frame back (allowed only when the named function of the same file calls them).
_FRAME_HANDOUTS: dict[tuple[str, str], str | None] = {
    ("inspect", "currentframe"): None,
    ("inspect", "stack"): None,
    ("logging", "<lambda>"): "findCaller",  # logging.currentframe
    ("traceback", "walk_stack"): None,
}
# Debuggers and test-tool internals that hand frames or frame locals around: never.
_HANDOUT_MODULES = ("bdb", "pdb", "_pytest.debugging", "_pytest.pytester", "numpy.distutils.misc_util")
# Frame and traceback attributes (f_code, tb_frame) are read only by these stdlib formatters, which turn
# frames into strings (traceback.format_exc(), logging's caller lookup); `walk_tb` yields frames, so
# only while the summarizer consumes it.
_ATTR_READERS: dict[tuple[str, str], str | None] = {
    ("logging", "findCaller"): None,
    ("logging", "_is_internal_frame"): "findCaller",
    ("warnings", "_is_internal_frame"): None,
    ("traceback", "_extract_from_extended_frame_gen"): None,
    ("traceback", "_walk_tb_with_full_positions"): "_extract_from_extended_frame_gen",
    ("traceback", "walk_tb"): "_extract_from_extended_frame_gen",
}
_AF_UNIX = 1  # socket.AF_UNIX on Linux
_CALL_OPS = frozenset({"PRECALL", "CALL", "CALL_FUNCTION", "CALL_METHOD"})


def installed_roots() -> tuple[str, ...]:
    """The standard library and the site-packages on sys.path (read-only in the sandbox)."""
    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    found = set(stdlib)
    for entry in sys.path:
        path = os.path.realpath(entry) if entry else ""
        if any(part in path.split("/") for part in ("site-packages", "dist-packages")):
            found.add(path)
    return tuple(sorted(found))
