"""The judge's wire codec: plain data by value as tagged JSON trees, decoded into exact builtin types.

Pure (no I/O). Both sides encode; what the judge decodes from the program is rebuilt from JSON with
builtin constructors only, so no subclass, custom `__eq__` or program object survives the crossing.
Anything that is not data travels as a reference the caller supplies (`ref`): a remote handle for the
program's objects, a reverse call for the test's callables.

Tags (every JSON array is tagged, so a bare JSON string is always a str):
  ["l", *items] list, ["t", *items] tuple, ["s", *items] set, ["f", *items] frozenset,
  ["d", k1, v1, ...] dict, ["b", latin-1 text] bytes, ["y", latin-1 text] bytearray,
  ["c", re, im] complex, ["n", name, [fields], *items] namedtuple (a judge-made class),
  ["v", type name, *args] a stdlib value type (Decimal, Fraction, date, datetime, time, timedelta, deque),
  ["h", id, kind, class name] the program's object, ["r", id, name, signature] the judge's callable,
  ["e", name, builtin base] an exception class, ["x", name, base, args, text] an exception instance.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import json
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
_SCALAR = (type(None), bool, int, float, str)
_SEQ_TAGS: dict[type, str] = {list: "l", tuple: "t", set: "s", frozenset: "f"}
_SEQ_TYPES = {"l": list, "t": tuple, "s": set, "f": frozenset}
_VALUE_TYPES: dict[str, Callable[..., Any]] = {
    "Decimal": lambda text: decimal.Decimal(_expect(text, str)),
    "Fraction": lambda n, d: fractions.Fraction(_expect(n, int), _expect(d, int)),
    "date": lambda text: datetime.date.fromisoformat(_expect(text, str)),
    "datetime": lambda text: datetime.datetime.fromisoformat(_expect(text, str)),
    "time": lambda text: datetime.time.fromisoformat(_expect(text, str)),
    "timedelta": lambda d, s, us: datetime.timedelta(_expect(d, int), _expect(s, int), _expect(us, int)),
    "deque": lambda items: collections.deque(_expect(items, list)),
}


class CodecError(ValueError):
    """A tree that is not a valid encoding (from the program: its error, never the judge's)."""


class NotData(TypeError):
    """A value the codec cannot carry by value and the caller has no reference for."""


def _expect(value: Any, tp: type) -> Any:
    if type(value) is not tp:
        raise CodecError(f"expected {tp.__name__}, got {type(value).__name__}")
    return value


def encode(value: Any, ref: Callable[[Any], list[Any]] | None = None, depth: int = 0) -> Any:
    """A JSON-able tree for `value`. Exact builtin data goes by value; other values go through
    `ref` (which returns a reference tree or raises NotData)."""
    if depth > MAX_DEPTH:
        raise NotData("nested too deeply")
    tp = type(value)
    if tp in _SCALAR:
        return value
    tag = _SEQ_TAGS.get(tp)
    if tag is not None:
        return [tag, *(encode(v, ref, depth + 1) for v in value)]
    if tp is dict:
        tree: list[Any] = ["d"]
        for k, v in value.items():
            tree.append(encode(k, ref, depth + 1))
            tree.append(encode(v, ref, depth + 1))
        return tree
    if tp is bytes:
        return ["b", value.decode("latin-1")]
    if tp is bytearray:
        return ["y", bytes(value).decode("latin-1")]
    if tp is complex:
        return ["c", value.real, value.imag]
    stdlib = _encode_stdlib(value, tp, ref, depth)
    if stdlib is not None:
        return stdlib
    if ref is None:
        raise NotData(f"{tp.__name__} is not plain data")
    return ref(value)


def _encode_stdlib(value: Any, tp: type, ref: Any, depth: int) -> list[Any] | None:
    if tp is decimal.Decimal:
        return ["v", "Decimal", str(value)]
    if tp is fractions.Fraction:
        return ["v", "Fraction", value.numerator, value.denominator]
    if tp in (datetime.date, datetime.datetime, datetime.time):
        return ["v", tp.__name__, value.isoformat()]
    if tp is datetime.timedelta:
        return ["v", "timedelta", value.days, value.seconds, value.microseconds]
    if tp is collections.deque:
        return ["v", "deque", encode(list(value), ref, depth + 1)]
    return None


def decode(
    tree: Any,
    handle: Callable[[int, str, str], Any] | None = None,
    reverse: Callable[[int, str, Any], Any] | None = None,
    exc_class: Callable[[str, str], type] | None = None,
    depth: int = 0,
) -> Any:
    """Rebuild a value from a tree with builtin constructors. References go to the given factories;
    a reference kind without a factory, or anything malformed, raises CodecError."""
    if depth > MAX_DEPTH:
        raise CodecError("nested too deeply")
    tp = type(tree)
    if tp in _SCALAR:
        return tree
    if tp is not list or not tree or type(tree[0]) is not str:
        raise CodecError(f"not an encoded value: {type(tree).__name__}")
    tag, body = tree[0], tree[1:]
    seq = _SEQ_TYPES.get(tag)
    if seq is not None:
        items = [decode(v, handle, reverse, exc_class, depth + 1) for v in body]
        try:
            return seq(items)
        except TypeError as exc:  # an unhashable member of a set
            raise CodecError(str(exc)) from None
    if tag == "d":
        if len(body) % 2:
            raise CodecError("dict with an odd number of entries")
        values = [decode(v, handle, reverse, exc_class, depth + 1) for v in body]
        try:
            return dict(zip(values[::2], values[1::2], strict=True))
        except TypeError as exc:
            raise CodecError(str(exc)) from None
    return _decode_tagged(tag, body, handle, reverse, exc_class, depth)


def _decode_tagged(tag: str, body: list[Any], handle: Any, reverse: Any, exc_class: Any, depth: int) -> Any:
    if tag in ("b", "y") and len(body) == 1:
        data = _expect(body[0], str).encode("latin-1", "replace")
        return data if tag == "b" else bytearray(data)
    if tag == "c" and len(body) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    if tag == "n" and len(body) >= 2:
        name, fields = _expect(body[0], str), _expect(body[1], list)
        items = [decode(v, handle, reverse, exc_class, depth + 1) for v in body[2:]]
        return namedtuple_class(name, tuple(_expect(f, str) for f in fields), len(items))(*items)
    if tag == "v" and body and type(body[0]) is str and body[0] in _VALUE_TYPES:
        args = [
            decode(v, handle, reverse, exc_class, depth + 1) if body[0] == "deque" else v for v in body[1:]
        ]
        try:
            return _VALUE_TYPES[body[0]](*args)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise CodecError(f"bad {body[0]}: {exc}") from None
    if tag == "h" and handle is not None and len(body) == 3:
        return handle(_expect(body[0], int), _expect(body[1], str), _expect(body[2], str))
    if tag == "r" and reverse is not None and len(body) == 3:
        return reverse(_expect(body[0], int), _expect(body[1], str), body[2])
    if tag == "e" and exc_class is not None and len(body) == 2:
        return exc_class(_expect(body[0], str), _expect(body[1], str))
    raise CodecError(f"unknown or malformed tag {tag!r}")


_NAMEDTUPLES: dict[tuple[str, tuple[str, ...]], type] = {}


def namedtuple_class(name: str, fields: tuple[str, ...], size: int) -> type:
    """A judge-made namedtuple class (tuple equality, attribute access by field)."""
    if len(fields) != size:
        raise CodecError("namedtuple fields do not match its items")
    key = (name, fields)
    found = _NAMEDTUPLES.get(key)
    if found is not None:
        return found
    try:
        made: type = collections.namedtuple(name, fields)  # type: ignore[misc]
    except ValueError as exc:
        raise CodecError(str(exc)) from None
    if len(_NAMEDTUPLES) < 256:
        _NAMEDTUPLES[key] = made
    return made


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def loads(data: bytes) -> dict[str, Any]:
    """One message; CodecError for anything that is not a JSON object."""
    try:
        message = json.loads(data.decode("ascii"))
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"malformed message: {str(exc)[:100]}") from None
    if type(message) is not dict:
        raise CodecError("a message must be a JSON object")
    return message
