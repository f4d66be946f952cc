"""Hardened comparisons for test code: `==`, `!=`, `in`, `not in` in a test file are rewritten to call
these, so an object whose `__eq__` always says True cannot pass `assert f(x) == expected`.

Rule: when exactly one side holds an object whose equality comes from untrusted code (the solution, or
anything compiled at run time), the comparison is structural and such an object equals only itself.
Values made of builtins and stdlib types compare natively, as in real pytest.
"""

from __future__ import annotations

import ast
import reprlib
from collections.abc import Callable
from typing import Any

_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None), bytearray})
_WALK_BUDGET = 200_000  # elements inspected per comparison before giving up on the fast path

REWRITTEN = {ast.Eq: "__rl_eq__", ast.NotEq: "__rl_ne__", ast.In: "__rl_in__", ast.NotIn: "__rl_notin__"}


class _Hardener(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) != 1 or type(node.ops[0]) not in REWRITTEN:
            return node
        call = ast.Call(
            func=ast.Name(id=REWRITTEN[type(node.ops[0])], ctx=ast.Load()),
            args=[node.left, node.comparators[0]],
            keywords=[],
        )
        return ast.copy_location(call, node)


def harden(tree: ast.Module) -> ast.Module:
    """Rewrite single comparisons of a parsed test module in place (chained ones stay native)."""
    return ast.fix_missing_locations(_Hardener().visit(tree))


class _Policy:
    """Which values carry untrusted equality, and the strict comparison used when one side does."""

    def __init__(self, trusted_files: frozenset[str], trusted_types: frozenset[type]) -> None:
        self._files = trusted_files
        self._types = trusted_types
        self._cache: dict[type, bool] = {}

    def untrusted_type(self, tp: type) -> bool:
        if tp in _SCALARS or tp in self._types:
            return False
        hit = self._cache.get(tp)
        if hit is None:
            hit = self._cache[tp] = _eq_is_untrusted(tp, self._files, self._types)
        return hit

    def needs_strict(self, a: Any, b: Any) -> bool:
        """Exactly one side holds untrusted equality (scalars on both sides never do)."""
        if type(a) in _SCALARS and type(b) in _SCALARS:
            return False
        return self.tainted(a) != self.tainted(b)

    def tainted(self, value: Any) -> bool:
        return _contains_untrusted(value, self.untrusted_type, [_WALK_BUDGET])

    def strict(self, a: Any, b: Any) -> bool:
        return _strict_eq(a, b, self.untrusted_type, 0)


def make_comparators(trusted_files: frozenset[str], trusted_types: frozenset[type]) -> dict[str, Any]:
    """The `__rl_*__` functions to inject into a test module's namespace, plus `__rl_last__`: the
    operands of the last false comparison (for the assertion message)."""
    policy = _Policy(trusted_files, trusted_types)
    last: list[Any] = []

    def eq(a: Any, b: Any) -> bool:
        result = policy.strict(a, b) if policy.needs_strict(a, b) else a == b
        if not result:
            last[:] = [a, "==", b]
        return result

    def ne(a: Any, b: Any) -> bool:
        result = not policy.strict(a, b) if policy.needs_strict(a, b) else a != b
        if not result:
            last[:] = [a, "!=", b]
        return result

    def contains(a: Any, b: Any) -> bool:
        if type(b) in (list, tuple, set, frozenset, dict) and policy.tainted(a) and not policy.tainted(b):
            result = any(policy.strict(a, item) for item in b)
        else:
            result = a in b
        if not result:
            last[:] = [a, "in", b]
        return result

    def not_contains(a: Any, b: Any) -> bool:
        result = not contains(a, b)
        if not result:
            last[:] = [a, "not in", b]
        return result

    return {
        "__rl_eq__": eq,
        "__rl_ne__": ne,
        "__rl_in__": contains,
        "__rl_notin__": not_contains,
        "__rl_last__": last,
    }


def describe_last(last: list[Any]) -> str:
    """`assert <left> <op> <right>` for the last false comparison, reprs truncated."""
    if len(last) != 3:
        return ""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 120
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = 12
    try:
        return f"assert {short.repr(last[0])} {last[1]} {short.repr(last[2])}"
    except Exception:  # a hostile __repr__ must not break the report
        return f"assert <{type(last[0]).__name__}> {last[1]} <{type(last[2]).__name__}>"


def _eq_is_untrusted(tp: type, trusted_files: frozenset[str], trusted_types: frozenset[type]) -> bool:
    """True when `tp`'s `__eq__`/`__ne__` is implemented by code we do not trust."""
    for klass in tp.__mro__:
        namespace = klass.__dict__
        if "__eq__" not in namespace and "__ne__" not in namespace:
            continue
        if klass in trusted_types:
            return False
        impl = namespace.get("__eq__", namespace.get("__ne__"))
        if type(impl).__name__ in ("wrapper_descriptor", "method-wrapper"):
            return False  # a builtin type's slot, reused; it refuses foreign `self`
        impl = getattr(impl, "__func__", impl)  # staticmethod / classmethod
        try:
            code = getattr(impl, "__code__", None)
        except PermissionError:  # the guard refused: treat as untrusted
            return True
        return code is None or code.co_filename not in trusted_files
    return False


def _contains_untrusted(value: Any, untrusted_type: Callable[[type], bool], budget: list[int]) -> bool:
    tp = type(value)
    if tp in _SCALARS:
        return False
    budget[0] -= 1
    if budget[0] < 0:
        return True  # too big to inspect: compare strictly rather than trust it
    if untrusted_type(tp):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        if _SCALARS.issuperset(map(type, value)):
            budget[0] -= len(value)
            return budget[0] < 0
        return any(_contains_untrusted(v, untrusted_type, budget) for v in value)
    if isinstance(value, dict):
        return any(_contains_untrusted(k, untrusted_type, budget) for k in value) or any(
            _contains_untrusted(v, untrusted_type, budget) for v in value.values()
        )
    return False


def _strict_eq(a: Any, b: Any, untrusted_type: Callable[[type], bool], depth: int) -> bool:
    if a is b:
        return True
    ua, ub = untrusted_type(type(a)), untrusted_type(type(b))
    if ua or ub:
        return bool(ua and ub and a == b)
    if depth > 200:
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        same_kind = isinstance(a, list) == isinstance(b, list) and len(a) == len(b)
        return same_kind and all(
            _strict_eq(x, y, untrusted_type, depth + 1) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return _strict_dict_eq(a, b, untrusted_type, depth)
    containers = (set, frozenset)
    if (isinstance(a, containers) or isinstance(b, containers)) and _any_untrusted(a, b, untrusted_type):
        return False
    return bool(a == b)


def _strict_dict_eq(
    a: dict[Any, Any], b: dict[Any, Any], untrusted_type: Callable[[type], bool], depth: int
) -> bool:
    if len(a) != len(b) or _any_untrusted(a, b, untrusted_type):  # keys: hashing trusts __eq__
        return False
    return all(k in b and _strict_eq(v, b[k], untrusted_type, depth + 1) for k, v in a.items())


def _any_untrusted(a: Any, b: Any, untrusted_type: Callable[[type], bool]) -> bool:
    return any(untrusted_type(type(x)) for x in a) or any(untrusted_type(type(x)) for x in b)
