"""The control protocol between worker processes: one JSON object per message, each
preceded by its length (4 bytes, big-endian), over a Unix domain socket.

A request is ``{"op": ..., ...}``; its answer ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. One request per connection. Messages are capped at
``MAX_MESSAGE_BYTES`` both ways, so a confused peer cannot make a worker buffer without end.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A message that is too large, cut short, or not a JSON object."""


def encode(message: dict[str, Any]) -> bytes:
    """``message`` framed: its length, then its JSON."""
    body = orjson.dumps(message)
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"a message of {len(body)} bytes is over {MAX_MESSAGE_BYTES}")
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """A message's JSON object (``ProtocolError`` for anything else)."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"a message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message is not a JSON object")
    return message


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next message; ``ProtocolError`` when the peer breaks off or sends nonsense."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if length > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"a message of {length} bytes is over {MAX_MESSAGE_BYTES}")
        return decode(await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        raise ProtocolError("the peer closed the connection mid-message") from None


async def write_message(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    """Send ``message`` and wait until it is handed to the socket."""
    writer.write(encode(message))
    await writer.drain()
