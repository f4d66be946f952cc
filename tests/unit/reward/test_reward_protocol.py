"""Pipe framing between executor and fork server, and the child's authenticated record channel."""

from __future__ import annotations

import os

from reward import protocol
from reward.sandbox.child import make_emit


def test_messages_survive_partial_reads():
    r, w = os.pipe()
    try:
        messages = [
            {"op": "run", "job": {"id": i, "code": "x" * (i * 1000), "s": "é\u2603"}} for i in range(5)
        ]
        data = b"".join(protocol.encode(m) for m in messages)
        reader = protocol.Reader(r)
        got = []
        for start in range(0, len(data), 777):
            os.write(w, data[start : start + 777])
            got += reader.read()[0]
        assert got == messages
        os.close(w)
        w = -1
        assert reader.read() == ([], True)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_records_need_the_runs_nonce():
    nonce = "ab" * 16
    data = (
        b"garbage\n"
        + b"0" * 32
        + b' {"t":"done","run_ms":1}\n'  # forged: wrong nonce
        + nonce.encode()
        + b' {"t":"test","outcome":"passed"}\n'
        + nonce.encode()
        + b" not json\n"
    )
    assert protocol.parse_records(data, nonce) == [{"t": "test", "outcome": "passed"}]


def test_emit_writes_parseable_records_for_any_text():
    r, w = os.pipe()
    try:
        emit = make_emit(w, "cd" * 16)
        tricky = 'quote " backslash \\ newline \n tab \t nul \x00 snowman \u2603'
        emit("test", name=tricky, outcome="passed", ok=True, n=3, ms=1.5)
        records = protocol.parse_records(os.read(r, 65536), "cd" * 16)
        assert records == [{"t": "test", "name": tricky, "outcome": "passed", "ok": True, "n": 3, "ms": 1.5}]
    finally:
        os.close(r)
        os.close(w)


def test_junk_without_a_newline_does_not_hide_the_next_record():
    """RELIABILITY.md: junk written to the inherited pipe used to glue onto, and so drop, the record
    after it."""
    nonce = "ef" * 16
    data = (
        nonce.encode()
        + b' {"t":"collected","total":2}\n'
        + b"junk-without-newline"
        + nonce.encode()
        + b' {"t":"test","outcome":"failed"}\n'
        + b"more junk"
    )
    assert protocol.parse_records(data, nonce) == [
        {"t": "collected", "total": 2},
        {"t": "test", "outcome": "failed"},
    ]
