"""The isolated judge's wire codec and channel: trees written out by hand, exact builtin types on the
way back, malformed input rejected, and the stand-ins for the test's callables."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import inspect
import math
import os
import socket
import struct

import pytest

from reward.judge import codec, program
from reward.judge.channel import Channel, ChannelBroken
from reward.judge.program import ProgramServer, make_stub
from reward.judge.proxies import Link, names_used_by


def test_plain_data_encodes_to_hand_written_trees():
    assert codec.encode(None) is None
    assert codec.encode([1, "a", 2.5, True]) == ["l", 1, "a", 2.5, True]
    assert codec.encode((1, (2,))) == ["t", 1, ["t", 2]]
    assert codec.encode({"k": [1]}) == ["d", "k", ["l", 1]]
    assert codec.encode({(1, 2): b"\x00\xff"}) == ["d", ["t", 1, 2], ["b", "\x00\xff"]]
    assert codec.encode(frozenset({3})) == ["f", 3]
    assert codec.encode(1 + 2j) == ["c", 1.0, 2.0]
    assert codec.encode(bytearray(b"ab")) == ["y", "ab"]
    assert codec.encode(decimal.Decimal("1.10")) == ["v", "Decimal", "1.10"]
    assert codec.encode(fractions.Fraction(3, 4)) == ["v", "Fraction", 3, 4]
    assert codec.encode(datetime.timedelta(days=1, seconds=2)) == ["v", "timedelta", 1, 2, 0]


def test_hand_written_trees_decode_to_exact_builtin_types():
    value = codec.decode(["d", "a", ["l", 1, ["t", 2, 3]], "b", ["s", 4], "c", ["c", 0, 1]])
    assert value == {"a": [1, (2, 3)], "b": {4}, "c": 1j}
    assert type(value["a"]) is list and type(value["a"][1]) is tuple and type(value["b"]) is set
    assert codec.decode(["v", "date", "2024-02-29"]) == datetime.date(2024, 2, 29)
    assert codec.decode(["v", "deque", ["l", 1, 2]]) == collections.deque([1, 2])
    assert codec.decode(["b", "\x00\xff"]) == b"\x00\xff"


def test_round_trip_keeps_nan_infinities_big_ints_and_lone_surrogates():
    data = [float("inf"), -0.0, 10**30, "\ud800", "é"]
    back = codec.loads(codec.dumps({"v": codec.encode(data)}))["v"]
    decoded = codec.decode(back)
    assert decoded[0] == float("inf") and str(decoded[1]) == "-0.0" and decoded[2] == 10**30
    assert decoded[3] == "\ud800" and decoded[4] == "é"
    nan = codec.decode(codec.loads(codec.dumps({"v": codec.encode(float("nan"))}))["v"])
    assert math.isnan(nan)


@pytest.mark.parametrize(
    "tree",
    [
        {"a": 1},  # a bare JSON object is no encoding
        [],  # no tag
        [1, 2],  # tag not a string
        ["zz", 1],  # unknown tag
        ["d", "a"],  # odd dict
        ["s", ["l", 1]],  # unhashable set member
        ["c", "1", 2],  # complex from strings
        ["v", "Decimal", 1],  # Decimal from an int: only its text form
        ["v", "eval", "1+1"],  # not a value type
        ["h", 1, "object", "X"],  # a handle where none is expected
        ["n", "P", ["x", "y"], 1],  # namedtuple fields that do not match its items
    ],
)
def test_malformed_trees_are_codec_errors(tree):
    with pytest.raises(codec.CodecError):
        codec.decode(tree)


def test_nesting_beyond_the_limit_is_refused_both_ways():
    deep: list = []
    for _ in range(codec.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(codec.NotData):
        codec.encode(deep)
    tree: list = ["l"]
    for _ in range(codec.MAX_DEPTH + 5):
        tree = ["l", tree]
    with pytest.raises(codec.CodecError):
        codec.decode(tree)


def test_objects_need_a_reference_and_subclasses_lose_their_class_on_the_program_side():
    class AlwaysEqual:
        __hash__ = None

        def __eq__(self, other):
            return True

    with pytest.raises(codec.NotData):
        codec.encode(AlwaysEqual())
    server = ProgramServer("", "/nonexistent/solution.py")

    class Point(tuple):
        __hash__ = tuple.__hash__

        def __eq__(self, other):
            return True

    assert server.to_tree(Point((1, 2))) == ["t", 1, 2]  # its builtin value, by value
    assert server.to_tree([AlwaysEqual()])[1][:3] == ["h", 1, "object"]
    Pair = collections.namedtuple("Pair", "a b")
    tree = server.to_tree(Pair(1, 2))
    assert tree == ["n", "Pair", ["a", "b"], 1, 2]
    back = codec.decode(tree)
    assert back == (1, 2) and back.b == 2 and type(back) is not Pair  # a judge-made class


def test_program_exceptions_become_builtin_or_judge_side_classes():
    r, w = socket.socketpair()
    try:
        link = Link(r.fileno(), frozenset())
        value_error = link.exception(["x", "ValueError", "ValueError", ["bad"], "bad"])
        assert type(value_error) is ValueError and str(value_error) == "bad"
        mine = link.exception(["x", "MyError", "KeyError", [], ""])
        assert type(mine).__name__ == "MyError" and isinstance(mine, KeyError)
        assert type(mine) is link.exception_class("MyError", "KeyError")  # the same class each time
        stop = link.exception(["x", "KeyboardInterrupt", "KeyboardInterrupt", [], ""])
        assert type(stop) is not KeyboardInterrupt and not isinstance(stop, KeyboardInterrupt)
        with pytest.raises(codec.CodecError):
            link.exception(["x", "ValueError"])
    finally:
        r.close()
        w.close()


def test_stub_has_the_test_functions_signature_and_forwards_bound_arguments():
    def target(a, b=2, *rest, c, d=4, **more):
        return a

    params = [[p.name, p.kind.name] for p in inspect.signature(target).parameters.values()]
    calls = []
    stub = make_stub(lambda index, bound: calls.append((index, bound)), 7, "target", params)
    assert list(inspect.signature(stub).parameters) == ["a", "b", "rest", "c", "d", "more"]
    assert stub.__code__.co_argcount == 2 and stub.__name__ == "target"
    stub(1, c=3, e=5)
    index, bound = calls[0]
    assert index == 7
    present = {n: v for n, v in bound if v is not program._MISSING}
    assert present == {"a": 1, "c": 3, "rest": (), "more": {"e": 5}}  # b and d left to their defaults


def test_channel_frames_survive_partial_reads_and_junk_breaks_the_channel():
    r, w = socket.socketpair()
    try:
        body = codec.dumps({"op": "x", "v": ["l", 1]})
        frame = struct.pack(">I", len(body)) + body
        for i in range(len(frame)):
            w.send(frame[i : i + 1])
        assert Channel(r.fileno(), lambda m: {}).receive() == {"op": "x", "v": ["l", 1]}
        w.send(b"junk-without-newline")  # read as a length far over the limit
        with pytest.raises(ChannelBroken):
            Channel(r.fileno(), lambda m: {}).receive()
        bad = b"[1]"
        w.send(struct.pack(">I", len(bad)) + bad)  # valid JSON, not an object
        with pytest.raises(ChannelBroken):
            Channel(r.fileno(), lambda m: {}).receive()
    finally:
        r.close()
        w.close()


def test_channel_serves_nested_requests_before_its_reply():
    r, w = socket.socketpair()
    try:
        served = []
        judge = Channel(r.fileno(), lambda m: served.append(m) or {"v": 10})
        program = Channel(w.fileno(), lambda m: {})
        program.send({"op": "rcall", "r": 0})  # the program calls back first ...
        program.send({"re": 1, "v": 42})  # ... then answers
        assert judge.serve_until_reply() == {"re": 1, "v": 42}
        assert served == [{"op": "rcall", "r": 0}]
        assert program.receive() == {"re": 1, "v": 10}
        os.close(os.dup(r.fileno()))
    finally:
        r.close()
        w.close()


def test_test_names_are_the_identifiers_a_test_uses_minus_builtins():
    names = names_used_by(
        "from solution import Stack\ndef test_x():\n    s = Stack()\n    assert len(s.items) == 0\n"
    )
    assert {"Stack", "items", "s"} <= names and "len" not in names
