"""The program's side of the isolated judge: runs in the sandboxed program process (another uid, no
test file, no judge state), imports the solution and serves the judge's requests over the channel.

Nothing here is trusted by the judge: it only turns the program's values into data trees and its
objects into handles; the judge decodes them with builtin constructors.
"""

from __future__ import annotations

import builtins
import io
import operator
import os
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from reward.judge import codec
from reward.judge.channel import Channel, ChannelBroken

SOLUTION = "solution"
CALLBACK_FILENAME = "<test callable>"  # stand-ins for the test's callables: counted as solution code
STDIO_THREAD_WAIT_S = 5.0
_DATA_BASES: tuple[Any, ...] = (
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    tuple,
    list,
    dict,
    set,
    frozenset,
)
_MUTABLE = (list, dict, set, bytearray)
_OPS: dict[str, Callable[..., Any]] = {
    "__len__": len,
    "__bool__": bool,
    "__iter__": iter,
    "__next__": next,
    "__repr__": repr,
    "__str__": str,
    "__hash__": hash,
    "__contains__": lambda obj, item: item in obj,
    "__getitem__": operator.getitem,
    "__setitem__": operator.setitem,
    "__delitem__": operator.delitem,
    "__eq__": operator.eq,
    "__ne__": operator.ne,
    "__lt__": operator.lt,
    "__le__": operator.le,
    "__gt__": operator.gt,
    "__ge__": operator.ge,
    "__enter__": lambda obj: obj.__enter__(),
    "__exit__": lambda obj, *a: obj.__exit__(*a),
    "__call__": lambda obj, *a: obj(*a),
    "__setattr__": setattr,
    "__delattr__": delattr,
    "__instancecheck__": lambda cls, obj: isinstance(cls, type) and isinstance(obj, cls),
}
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "matmul"):
    _fn = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    _OPS[f"__{_name}__"] = _fn
    _OPS[f"__r{_name}__"] = lambda obj, other, _fn=_fn: _fn(other, obj)
for _name in ("neg", "pos", "abs", "invert", "index"):
    _OPS[f"__{_name}__"] = getattr(operator, _name)
_OPS["__int__"], _OPS["__float__"] = int, float


class ProgramServer:
    """The handle table and the request handlers of one run."""

    def __init__(self, code: str, path: str) -> None:
        self.code = code
        self.path = path
        self.module = types.ModuleType(SOLUTION)
        self.module.__file__ = path
        self.handles: list[Any] = [self.module]  # handle 0 is the solution module
        self.ids: dict[int, int] = {}
        self.channel: Channel | None = None
        self._capturing = 0

    # --- values -> trees -----------------------------------------------------------------------
    def to_tree(self, value: Any) -> Any:
        return codec.encode(value, self._ref)

    def _ref(self, value: Any) -> Any:
        if isinstance(value, tuple) and type(getattr(value, "_fields", None)) is tuple:
            fields = [str(f) for f in getattr(value, "_fields", ())]
            return ["n", type(value).__name__, fields, *(self.to_tree(v) for v in tuple.__iter__(value))]
        for base in _DATA_BASES:
            if isinstance(value, base):  # a subclass of builtin data: its builtin value
                return self.to_tree(base(value))
        if isinstance(value, type) and issubclass(value, BaseException):
            return ["e", value.__name__, _builtin_base(value)]
        if isinstance(value, BaseException):
            return self.exception_tree(value)
        key = id(value)
        index = self.ids.get(key)
        if index is None:
            index = self.ids[key] = len(self.handles)
            self.handles.append(value)
        return [
            "h",
            index,
            _kind(value),
            type(value).__name__ if not isinstance(value, type) else value.__name__,
        ]

    def exception_tree(self, exc: BaseException) -> list[Any]:
        args = []
        for arg in exc.args[:8]:
            try:
                args.append(codec.encode(arg))
            except codec.NotData:
                args.append(_safe_str(arg))
        return ["x", type(exc).__name__, _builtin_base(type(exc)), args, _safe_str(exc)]

    # --- trees -> values -----------------------------------------------------------------------
    def from_tree(self, tree: Any) -> Any:
        return codec.decode(tree, self._handle, self._reverse, _exception_class)

    def _handle(self, index: int, kind: str, name: str) -> Any:
        if not 0 <= index < len(self.handles):
            raise codec.CodecError(f"no handle {index}")
        return self.handles[index]

    def _reverse(self, index: int, name: str, signature: Any) -> Callable[..., Any]:
        return make_stub(self._call_judge, index, name, signature)

    def _call_judge(self, index: int, bound: list[list[Any]]) -> Any:
        """`bound`: [name, value] per parameter of the test's callable (missing ones left out)."""
        assert self.channel is not None
        trees = [[n, self.to_tree(v)] for n, v in bound if v is not _MISSING]
        reply = self.channel.request({"op": "rcall", "r": index, "b": trees})
        if "x" in reply:
            raise _exception_from_tree(reply["x"])
        return self.from_tree(reply.get("v"))

    # --- requests ------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        top = self._capturing == 0
        saved = sys.stdout, sys.stderr
        if top:
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        self._capturing += 1
        try:
            reply = self._dispatch(op, message)
        except BaseException as exc:
            reply = {"x": self._safe_exception_tree(exc)}
        finally:
            self._capturing -= 1
            if top:
                out, err = sys.stdout, sys.stderr
                sys.stdout, sys.stderr = saved
        if top:
            for key, stream in (("out", out), ("err", err)):
                text = stream.getvalue() if isinstance(stream, io.StringIO) else ""
                if text:
                    reply[key] = text[-(1 << 20) :]
        return reply

    def _safe_exception_tree(self, exc: BaseException) -> list[Any]:
        try:
            return self.exception_tree(exc)
        except BaseException:
            return ["x", "RuntimeError", "RuntimeError", [], "unreportable exception"]

    def _dispatch(self, op: Any, message: dict[str, Any]) -> dict[str, Any]:
        if op == "import":
            sys.modules[SOLUTION] = self.module
            exec(compile(self.code, self.path, "exec", dont_inherit=True), self.module.__dict__)
            return {"v": None}
        if op == "get":
            return {"v": self.to_tree(getattr(self._target(message), str(message.get("name"))))}
        if op == "call":
            return self._call(message)
        if op == "op":
            fn = _OPS[str(message.get("name"))]
            args = [self.from_tree(a) for a in message.get("a", [])]
            return {"v": self.to_tree(fn(self._target(message), *args))}
        if op == "names":
            shadow = vars(builtins)
            names = [
                k for k in vars(self.module) if type(k) is str and not k.startswith("__") and k not in shadow
            ]
            return {"v": self.to_tree(names)}
        if op == "stdio":
            return run_stdio_case(self.code, self.path, str(message.get("input", "")))
        raise ValueError(f"unknown request {op!r}")

    def _target(self, message: dict[str, Any]) -> Any:
        index = message.get("h", 0)
        if type(index) is not int or not 0 <= index < len(self.handles):
            raise ValueError("bad handle")
        return self.handles[index]

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        arg_trees = list(message.get("a", []))
        kw_trees = dict(message.get("k", {}))
        args = [self.from_tree(t) for t in arg_trees]
        kwargs = {str(k): self.from_tree(t) for k, t in kw_trees.items()}
        result = self._target(message)(*args, **kwargs)
        reply: dict[str, Any] = {"v": self.to_tree(result)}
        changed = []
        for key, value, tree in [
            *zip(range(len(args)), args, arg_trees, strict=True),
            *((k, kwargs[k], kw_trees[k]) for k in kwargs),
        ]:
            if type(value) in _MUTABLE:
                after = self.to_tree(value)
                if after != tree:
                    changed.append([key, after])
        if changed:
            reply["m"] = changed
        return reply


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return "class"
    if isinstance(value, (types.GeneratorType, types.CoroutineType)) or (
        hasattr(type(value), "__next__") and hasattr(type(value), "__iter__")
    ):
        return "iterator"
    if callable(value):
        return "function"
    return "object"


def _builtin_base(cls: type) -> str:
    for klass in cls.__mro__:
        if getattr(builtins, klass.__name__, None) is klass:
            return klass.__name__
    return "Exception"


def _safe_str(value: Any) -> str:
    try:
        return str(value)[:2000]
    except BaseException:
        return "<unprintable>"


def _exception_class(name: str, base: str) -> type:
    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    parent = getattr(builtins, base, Exception)
    if not (isinstance(parent, type) and issubclass(parent, BaseException)):
        parent = Exception
    return type(name, (parent,), {})


def _exception_from_tree(tree: Any) -> BaseException:
    if type(tree) is list and len(tree) == 5 and tree[0] == "x":
        cls = _exception_class(str(tree[1]), str(tree[2]))
        try:
            return cls(*[codec.decode(a) for a in tree[3]])
        except BaseException:
            return cls(str(tree[4]))
    return RuntimeError("malformed exception from the judge")


def make_stub(call: Callable[..., Any], index: int, name: str, signature: Any) -> Callable[..., Any]:
    """A function standing for one of the test's callables: the same parameter names and kinds (so
    inspect.signature and __code__ read as the test wrote them); each call sends the bound arguments
    by name and the judge rebinds them to the real callable."""
    params = signature if type(signature) is list else None
    fname = name if type(name) is str and name.isidentifier() and name != "lambda" else "callback"
    if params is None or not all(
        type(p) is list and len(p) == 2 and type(p[0]) is str and p[0].isidentifier() and p[1] in _KINDS
        for p in params
    ):
        return lambda *args, **kwargs: call(index, [["*", list(args)], ["**", kwargs]])
    parts: list[str] = []
    for i, (pname, kind) in enumerate(params):
        if kind == "KEYWORD_ONLY" and (i == 0 or params[i - 1][1] not in ("KEYWORD_ONLY", "VAR_POSITIONAL")):
            parts.append("*")
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        default = "" if prefix else "=__rl_missing"
        parts.append(f"{prefix}{pname}{default}")
        if kind == "POSITIONAL_ONLY" and (i + 1 == len(params) or params[i + 1][1] != "POSITIONAL_ONLY"):
            parts.append("/")
    names = ", ".join(f"[{p!r}, {p}]" for p, _ in params)
    source = f"def {fname}({', '.join(parts)}):\n    return __rl_call({index}, [{names}])\n"
    namespace: dict[str, Any] = {"__rl_call": call, "__rl_missing": _MISSING}
    exec(compile(source, CALLBACK_FILENAME, "exec"), namespace)
    return namespace[fname]


_KINDS = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL", "KEYWORD_ONLY", "VAR_KEYWORD")
_MISSING = object()


def run_stdio_case(code: str, path: str, given: str) -> dict[str, Any]:
    """Run the program as __main__ with `given` on fd 0; fd 1 and sys.stdout both captured (os.write(1)
    included); non-daemon threads it started are waited for, as the interpreter would at exit."""
    stdin_fd = os.memfd_create("stdin")
    os.write(stdin_fd, given.encode("utf-8", "replace"))
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_fd = os.memfd_create("stdout")
    saved_fds = os.dup(0), os.dup(1)
    os.dup2(stdin_fd, 0)
    os.dup2(out_fd, 1)
    os.close(stdin_fd)
    saved = sys.stdin, sys.stdout
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    before = set(threading.enumerate())
    reply: dict[str, Any] = {"outcome": "passed"}
    try:
        exec(compile(code, path, "exec", dont_inherit=True), {"__name__": "__main__", "__file__": path})
        _join_new_threads(before)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            reply = {"outcome": "error", "detail": f"exit status {exc.code!r}"}
    except BaseException as exc:
        name = type(exc).__name__
        outcome = "memory" if isinstance(exc, MemoryError) else "error"
        reply = {"outcome": outcome, "detail": f"{name}: {_safe_str(exc)}"[:600]}
    finally:
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        sys.stdin, sys.stdout = saved
        os.dup2(saved_fds[0], 0)
        os.dup2(saved_fds[1], 1)
        for fd in saved_fds:
            os.close(fd)
    size = os.fstat(out_fd).st_size
    reply["stdout"] = os.pread(out_fd, min(size, 16 << 20), 0).decode("utf-8", "replace")
    os.close(out_fd)
    return reply


def _join_new_threads(before: set[threading.Thread]) -> None:
    deadline = time.monotonic() + STDIO_THREAD_WAIT_S
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def serve(fd: int, code: str, path: str) -> None:
    """The program process's loop after the sandbox is entered: say ready, serve until the judge goes."""
    server = ProgramServer(code, path)
    channel = Channel(fd, server.handle)
    server.channel = channel
    try:
        channel.send({"ready": True})
        while True:
            channel.send({"re": 1, **server.handle(channel.receive())})
    except ChannelBroken:
        return
