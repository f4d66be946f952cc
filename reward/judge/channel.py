"""A blocking, framed, nested RPC channel over one socket between the judge and the program.

Each message is a 4-byte big-endian length and a JSON object (codec.dumps). A request may be answered
only after the other side made requests of its own (a reverse call during a call), so `request`
serves incoming requests until its own answer comes. Junk cannot glue or drop a frame: a length
over the limit or a body that is not a JSON object ends the channel with ChannelBroken.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from reward.judge import codec

MAX_FRAME_BYTES = 64 << 20
MAX_NESTING = 50
_HEADER = struct.Struct(">I")


class ChannelBroken(EOFError):
    """The other side closed the channel, died, or sent something that is not a frame."""


class Channel:
    def __init__(self, fd: int, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.fd = fd
        self.handler = handler  # serves the other side's requests
        self._depth = 0

    def send(self, message: dict[str, Any]) -> None:
        body = codec.dumps(message)
        data = memoryview(_HEADER.pack(len(body)) + body)
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as exc:
            raise ChannelBroken(f"send failed: {exc}") from None

    def receive(self) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(_HEADER.size))
        if size > MAX_FRAME_BYTES:
            raise ChannelBroken(f"frame of {size} bytes exceeds the limit")
        try:
            return codec.loads(self._read_exact(size))
        except codec.CodecError as exc:
            raise ChannelBroken(str(exc)) from None

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = os.read(self.fd, min(n, 1 << 20))
            except OSError as exc:
                raise ChannelBroken(f"read failed: {exc}") from None
            if not chunk:
                raise ChannelBroken("the other side closed the channel")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request; serve nested requests until its reply (a message with "re") arrives."""
        if self._depth >= MAX_NESTING:
            raise RecursionError("too many nested calls across the judge boundary")
        self._depth += 1
        try:
            self.send(message)
            return self.serve_until_reply()
        finally:
            self._depth -= 1

    def serve_until_reply(self) -> dict[str, Any]:
        while True:
            incoming = self.receive()
            if "re" in incoming:
                return incoming
            self.send({"re": 1, **self.handler(incoming)})
