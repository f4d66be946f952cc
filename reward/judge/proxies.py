"""The judge's side of the boundary: the `solution` module the test imports, remote handles for the
program's objects, reverse calls for the test's callables, exceptions rebuilt as judge-side classes.

Everything the program sends is decoded by codec.decode into exact builtin types, so the test's
comparisons run on judge-side values. A handle's truth, comparisons, containment, size and arithmetic
are asked of the program only when its class is one the test names (a `Stack` the problem asks for);
any other object of the program's (an always-equal forgery) equals only itself.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from reward.harness.fixtures import Unsupported
from reward.judge import codec
from reward.judge.channel import Channel, ChannelBroken

_CONTROL_FLOW = frozenset({"KeyboardInterrupt", "SystemExit", "GeneratorExit"})
_STAR_EXCLUDED = frozenset(dir(builtins)) | {"pytest", "solution"}


class ProgramGone(Exception):
    """The program's process ended or broke the channel: every later call fails with this."""


class Link:
    """One run's connection to the program process, with the judge-side tables."""

    def __init__(self, fd: int, test_names: frozenset[str]) -> None:
        self.channel = Channel(fd, self._serve)
        self.test_names = test_names  # names the test uses: objects of such classes answer ==, <, in
        self.remotes: dict[int, Remote] = {}
        self.callables: list[tuple[Callable[..., Any], inspect.Signature | None]] = []
        self.exceptions: dict[tuple[str, str], type] = {}
        self.gone = ""
        self.unsupported = ""  # why the boundary could not serve the test (the run falls back)

    # --- requests to the program ---------------------------------------------------------------
    def request(self, message: dict[str, Any]) -> Any:
        if self.gone:
            raise ProgramGone(self.gone)
        try:
            reply = self.channel.request(message)
        except ChannelBroken as exc:
            self.gone = f"the program's process ended or broke the channel ({exc})"
            raise ProgramGone(self.gone) from None
        for key, stream in (("out", sys.stdout), ("err", sys.stderr)):
            text = reply.get(key)
            if type(text) is str:
                stream.write(text)
        try:
            if "x" in reply:
                raise self.exception(reply["x"])
            return reply
        except codec.CodecError as exc:
            self.gone = f"the program sent a malformed reply ({exc})"
            raise ProgramGone(self.gone) from None

    def value(self, reply: Any) -> Any:
        try:
            return self.decode(reply.get("v"))
        except codec.CodecError as exc:
            self.gone = f"the program sent a malformed value ({exc})"
            raise ProgramGone(self.gone) from None

    def decode(self, tree: Any) -> Any:
        return codec.decode(tree, self.remote, None, self.exception_class)

    def encode(self, value: Any) -> Any:
        try:
            return codec.encode(value, self._ref)
        except codec.NotData as exc:
            self.unsupported = self.unsupported or f"the test passes a value the judge cannot carry: {exc}"
            raise Unsupported(self.unsupported) from None

    def _ref(self, value: Any) -> list[Any]:
        if type(value) is Remote:
            return ["h", value._rl_id, "", ""]
        if isinstance(value, tuple) and type(getattr(value, "_fields", None)) is tuple:
            fields = [str(f) for f in getattr(value, "_fields", ())]
            return ["n", type(value).__name__, fields, *(self.encode(v) for v in tuple.__iter__(value))]
        if isinstance(value, type) and issubclass(value, BaseException):
            return ["e", value.__name__, _builtin_base(value)]
        if callable(value) and not isinstance(value, type):
            try:
                sig: inspect.Signature | None = inspect.signature(value)
            except (TypeError, ValueError):
                sig = None
            self.callables.append((value, sig))
            params = [[p.name, p.kind.name] for p in sig.parameters.values()] if sig is not None else None
            return ["r", len(self.callables) - 1, getattr(value, "__name__", "callback"), params]
        raise codec.NotData(f"{type(value).__name__} is not plain data")

    def remote(self, index: int, kind: str, name: str) -> Remote:
        found = self.remotes.get(index)
        if found is None:
            found = self.remotes[index] = Remote(self, index, kind, name)
        return found

    def exception_class(self, name: str, base: str) -> type:
        found = getattr(builtins, name, None)
        if name not in _CONTROL_FLOW and isinstance(found, type) and issubclass(found, BaseException):
            return found
        key = (name, base)
        cls = self.exceptions.get(key)
        if cls is None:
            parent = getattr(builtins, base, Exception)
            if base in _CONTROL_FLOW or not (isinstance(parent, type) and issubclass(parent, BaseException)):
                parent = Exception if base not in _CONTROL_FLOW else BaseException
            safe = name if name.isidentifier() else "ProgramError"
            cls = self.exceptions[key] = type(safe, (parent,), {"__module__": "solution"})
        return cls

    def exception(self, tree: Any) -> BaseException:
        if type(tree) is not list or len(tree) != 5 or tree[0] != "x" or type(tree[3]) is not list:
            raise codec.CodecError("malformed exception")
        cls = self.exception_class(codec._expect(tree[1], str), codec._expect(tree[2], str))
        try:
            return cls(*[codec.decode(a) for a in tree[3]])
        except codec.CodecError:
            raise
        except Exception:
            return cls(str(tree[4]))

    # --- the program's requests to the judge (reverse calls) -----------------------------------
    def _serve(self, message: dict[str, Any]) -> dict[str, Any]:
        index = message.get("r")
        if message.get("op") != "rcall" or type(index) is not int or not 0 <= index < len(self.callables):
            return {"x": ["x", "TypeError", "TypeError", ["bad reverse call"], "bad reverse call"]}
        func, sig = self.callables[index]
        try:
            args, kwargs = self._rebind(message.get("b"), sig)
            return {"v": self.encode(func(*args, **kwargs))}
        except Unsupported:
            raise
        except Exception as exc:
            return {"x": ["x", type(exc).__name__, _builtin_base(type(exc)), [], str(exc)[:2000]]}

    def _rebind(self, bound: Any, sig: inspect.Signature | None) -> tuple[list[Any], dict[str, Any]]:
        if type(bound) is not list:
            raise TypeError("bad arguments")
        values = {str(n): self.decode(t) for n, t in bound if type(n) is str}
        if sig is None or "*" in values:
            return list(values.get("*", [])), dict(values.get("**", {}))
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True
        for p in sig.parameters.values():
            if p.name not in values:
                positional = positional and p.kind is p.VAR_POSITIONAL
                continue
            value = values[p.name]
            if p.kind is p.VAR_POSITIONAL:
                args.extend(value)
            elif p.kind is p.VAR_KEYWORD:
                kwargs.update(value)
            elif positional and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                args.append(value)
            else:
                kwargs[p.name] = value
        return args, kwargs

    # --- calls ---------------------------------------------------------------------------------
    def call(self, index: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        arg_trees = [self.encode(a) for a in args]
        kw_trees = {str(k): self.encode(v) for k, v in kwargs.items()}
        reply = self.request({"op": "call", "h": index, "a": arg_trees, "k": kw_trees})
        result = self.value(reply)
        for key, tree in reply.get("m", []) if type(reply.get("m")) is list else []:
            original = args[key] if type(key) is int and 0 <= key < len(args) else kwargs.get(str(key))
            _copy_back(original, self.decode(tree))
        return result

    def op(self, index: int, name: str, *args: Any) -> Any:
        return self.value(
            self.request({"op": "op", "h": index, "name": name, "a": [self.encode(a) for a in args]})
        )

    def get(self, index: int, name: str) -> Any:
        return self.value(self.request({"op": "get", "h": index, "name": name}))


def _copy_back(original: Any, new: Any) -> None:
    """Mutations the program made to an argument, applied to the test's own object."""
    if type(original) is not type(new):
        return
    if type(original) in (list, bytearray):
        original[:] = new
    elif type(original) in (dict, set):
        original.clear()
        original.update(new)


def _builtin_base(cls: type) -> str:
    for klass in cls.__mro__:
        if getattr(builtins, klass.__name__, None) is klass:
            return klass.__name__
    return "Exception"


@functools.lru_cache(maxsize=512)  # filled in the fork server, inherited by each judge
def names_used_by(source: str) -> frozenset[str]:
    """Identifiers a test source uses (names, attributes, imported names), minus the builtins."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
    return frozenset(names - set(dir(builtins)))


def _forward(name: str, trusted_only: bool = True, unary: bool = False) -> Callable[..., Any]:
    def method(self: Remote, *args: Any) -> Any:
        if trusted_only and not self._rl_trusted(args):
            if unary:
                raise TypeError(
                    f"{name} of the program's {self._rl_name} object, a class the test does not name"
                )
            return NotImplemented
        return self._rl_link.op(self._rl_id, name, *args)

    method.__name__ = name
    return method


class Remote:
    """A handle to one of the program's objects (function, class, instance, iterator)."""

    __slots__ = ("_rl_id", "_rl_kind", "_rl_link", "_rl_name")

    def __init__(self, link: Link, index: int, kind: str, name: str) -> None:
        object.__setattr__(self, "_rl_link", link)
        object.__setattr__(self, "_rl_id", index)
        object.__setattr__(self, "_rl_kind", kind)
        object.__setattr__(self, "_rl_name", name)

    def _rl_trusted(self, others: tuple[Any, ...] = ()) -> bool:
        return self._rl_name in self._rl_link.test_names or any(type(o) is Remote for o in others)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._rl_link.get(self._rl_id, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._rl_link.op(self._rl_id, "__setattr__", name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rl_link.call(self._rl_id, args, kwargs)

    def __repr__(self) -> str:
        text = self._rl_link.op(self._rl_id, "__repr__")
        return text if type(text) is str else f"<{self._rl_name} of the program>"

    def __str__(self) -> str:
        text = self._rl_link.op(self._rl_id, "__str__")
        return text if type(text) is str else repr(self)

    def __hash__(self) -> int:
        value = self._rl_link.op(self._rl_id, "__hash__")
        return value if type(value) is int else id(self)

    def __iter__(self) -> Any:
        return self._rl_link.op(self._rl_id, "__iter__")

    def __next__(self) -> Any:
        return self._rl_link.op(self._rl_id, "__next__")

    def __bool__(self) -> bool:
        if not self._rl_trusted():
            return True  # what Python says of an object without __bool__ or __len__
        return bool(self._rl_link.op(self._rl_id, "__bool__"))

    def __eq__(self, other: object) -> Any:
        if other is self:
            return True
        if not self._rl_trusted((other,)):
            return NotImplemented
        return self._rl_link.op(self._rl_id, "__eq__", other)

    def __ne__(self, other: object) -> Any:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __contains__(self, item: Any) -> bool:
        if not self._rl_trusted((item,)):
            raise TypeError(f"the program's {self._rl_name} object is not a container the test names")
        return bool(self._rl_link.op(self._rl_id, "__contains__", item))

    def __len__(self) -> int:
        if not self._rl_trusted():
            raise TypeError(f"the program's {self._rl_name} object has no len() the test can trust")
        value = self._rl_link.op(self._rl_id, "__len__")
        if type(value) is not int:
            raise TypeError("__len__ of the program's object returned a non-int")
        return value

    def __instancecheck__(self, obj: Any) -> bool:
        """isinstance(x, solution.Cls): the program's answer for its own objects and for data; a
        namedtuple it returned (a judge-made class by value) is an instance of the program's class
        of the same name and fields."""
        if type(obj) is not Remote and isinstance(obj, tuple) and hasattr(type(obj), "_fields"):
            if type(obj).__name__ != self._rl_name:
                return False
            try:
                fields = self._rl_link.get(self._rl_id, "_fields")
            except AttributeError:
                return False
            return type(fields) is tuple and fields == getattr(type(obj), "_fields", None)
        if type(obj) is not Remote:
            try:
                codec.encode(obj)
            except codec.NotData:  # a judge-side object: never an instance of a program class
                return False
        return self._rl_link.op(self._rl_id, "__instancecheck__", obj) is True

    def __enter__(self) -> Any:
        return self._rl_link.op(self._rl_id, "__enter__")

    def __exit__(self, *args: Any) -> Any:
        return self._rl_link.op(self._rl_id, "__exit__", None, None, None)

    __lt__ = _forward("__lt__")
    __le__ = _forward("__le__")
    __gt__ = _forward("__gt__")
    __ge__ = _forward("__ge__")
    __getitem__ = _forward("__getitem__", trusted_only=False)
    __setitem__ = _forward("__setitem__", trusted_only=False)
    __delitem__ = _forward("__delitem__", trusted_only=False)
    __add__, __radd__ = _forward("__add__"), _forward("__radd__")
    __sub__, __rsub__ = _forward("__sub__"), _forward("__rsub__")
    __mul__, __rmul__ = _forward("__mul__"), _forward("__rmul__")
    __truediv__, __floordiv__, __mod__ = (
        _forward("__truediv__"),
        _forward("__floordiv__"),
        _forward("__mod__"),
    )
    __neg__, __abs__ = _forward("__neg__", unary=True), _forward("__abs__", unary=True)
    __index__ = _forward("__index__", unary=True)
    __int__, __float__ = _forward("__int__", unary=True), _forward("__float__", unary=True)


class SolutionModule(types.ModuleType):
    """`sys.modules["solution"]` in the judge: every attribute is asked of the program's module."""

    def __init__(self, link: Link) -> None:
        super().__init__("solution")
        self.__dict__["_rl_link"] = link

    def __getattr__(self, name: str) -> Any:
        link = self.__dict__["_rl_link"]
        if name == "__all__":  # `from solution import *`: never a name that shadows a builtin or pytest
            try:
                names = link.get(0, "__all__")
            except AttributeError:
                names = [n for n in link.value(link.request({"op": "names"})) if not n.startswith("_")]
            if type(names) not in (list, tuple):
                raise TypeError("the program's __all__ is not a list of names")
            return [n for n in names if type(n) is str and n not in _STAR_EXCLUDED]
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return link.get(0, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") and name.endswith("__"):
            self.__dict__[name] = value
            return
        self.__dict__["_rl_link"].op(0, "__setattr__", name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__["_rl_link"].op(0, "__delattr__", name)
