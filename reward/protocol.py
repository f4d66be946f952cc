"""Wire formats between executor and fork server (length-prefixed JSON messages over pipes) and between
a sandboxed child and the fork server (one `NONCE {json}` line per record; lines without the run's
nonce are ignored, so a program printing or writing fake records forges nothing).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 256 << 20


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(body)) + body


def send(fd: int, message: dict[str, Any]) -> None:
    """Blocking write of one message (the reader on the other side always drains)."""
    data = memoryview(encode(message))
    while data:
        n = os.write(fd, data)
        data = data[n:]


class Reader:
    """Incremental decoder for a pipe: call read() when the fd is readable."""

    def __init__(self, fd: int, blocking: bool = False) -> None:
        self.fd = fd
        self._buf = bytearray()
        if not blocking:
            os.set_blocking(fd, False)

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """Messages completed so far and whether the other end closed."""
        eof = False
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    eof = True
                    break
                self._buf += chunk
                if len(chunk) < 1 << 20:
                    break
        except BlockingIOError:
            pass
        return self._split(), eof

    def _split(self) -> list[dict[str, Any]]:
        messages = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_MESSAGE_BYTES:
                raise ValueError(f"message of {size} bytes exceeds the limit")
            if len(self._buf) < _HEADER.size + size:
                break
            body = bytes(self._buf[_HEADER.size : _HEADER.size + size])
            del self._buf[: _HEADER.size + size]
            messages.append(json.loads(body.decode("utf-8", "surrogatepass")))
        return messages


def parse_records(data: bytes, nonce: str) -> list[dict[str, Any]]:
    """The child's authenticated records, in order; anything else on the channel is dropped. A record
    starts at its nonce wherever that is (junk without a newline before it cannot hide it) and ends
    at the next newline (the writer escapes every control character inside)."""
    prefix = nonce.encode() + b" "
    records = []
    start = data.find(prefix)
    while start != -1:
        end = data.find(b"\n", start)
        body = data[start + len(prefix) : end if end != -1 else len(data)]
        try:
            record = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        start = data.find(prefix, start + len(prefix))
    return records
