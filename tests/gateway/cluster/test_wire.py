"""The control protocol's framing: round trips, and the messages it refuses."""

from __future__ import annotations

import asyncio
import struct

import pytest

from gateway.cluster.wire import MAX_MESSAGE_BYTES, ProtocolError, encode, read_message


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_a_message_round_trips() -> None:
    message = {"op": "load", "model": "mlp", "body": {"parameters": {"config": "{}"}}}
    assert await read_message(_reader(encode(message))) == message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (struct.pack(">I", MAX_MESSAGE_BYTES + 1), "over"),
        (struct.pack(">I", 10) + b"{}", "mid-message"),
        (b"\x00\x00", "mid-message"),
        (struct.pack(">I", 3) + b"[1]", "not a JSON object"),
        (struct.pack(">I", 3) + b"{x}", "not JSON"),
    ],
    ids=["too large", "cut short", "short length", "not an object", "not JSON"],
)
async def test_bad_messages_are_protocol_errors(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        await read_message(_reader(data))


def test_an_oversized_message_is_not_sent() -> None:
    with pytest.raises(ProtocolError, match="over"):
        encode({"blob": "x" * MAX_MESSAGE_BYTES})
