"""Tamper snapshots: identities of builtins, pytest's namespace and the harness's own functions, taken
once in the fork server and checked after every test. Legit code never rebinds them; a solution that
does gets `error`.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

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
