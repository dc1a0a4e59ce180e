"""CoalescingTransport: a response's head and body leave as one write."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from gateway.serving.coalescing import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Stands in for the socket transport; records what reaches it."""

    def __init__(self) -> None:
        super().__init__({"peername": ("127.0.0.1", 5)})
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 10


def wrapped() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_a_head_waits_for_its_body_and_both_leave_as_one_write() -> None:
    transport, inner = wrapped()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 10 + 19
    transport.write(b'{"ok":true}')
    # Sent with the body, not at the end of the turn: the work that follows an answer in
    # the same turn (metrics, the access log) is not on the client's wait.
    assert inner.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']
    await next_turn()
    assert len(inner.writes) == 1  # the scheduled flush finds nothing left
    transport.write(b"next")
    assert inner.writes[-1] != b"next"
    await next_turn()
    assert inner.writes[-1] == b"next"  # a write nothing follows leaves with the turn


async def test_a_reused_buffer_is_copied_when_written() -> None:
    transport, inner = wrapped()
    buffer = bytearray(b"abc")
    transport.writelines([buffer, memoryview(b"def")])
    buffer[:] = b"xyz"
    await next_turn()
    assert inner.writes == [b"abcdef"]


async def test_close_sends_what_is_queued_first() -> None:
    transport, inner = wrapped()
    transport.write(b"last words")
    transport.close()
    assert inner.events == ["write", "close"]
    await next_turn()
    assert inner.writes == [b"last words"]  # the scheduled flush finds nothing left


async def test_abort_drops_what_is_queued() -> None:
    transport, inner = wrapped()
    transport.write(b"never sent")
    transport.abort()
    await next_turn()
    assert inner.events == ["abort"]


async def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    transport, inner = wrapped()
    transport.write(b"too late")
    inner.closing = True
    await next_turn()
    assert inner.writes == []
    assert transport.is_closing()


async def test_extra_info_comes_from_the_socket_transport() -> None:
    transport, _ = wrapped()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    assert transport.get_extra_info("missing", "default") == "default"


async def test_the_rest_of_the_transport_api_reaches_a_real_socket_transport() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        inner, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        transport = CoalescingTransport(inner, loop)
        transport.set_write_buffer_limits(high=4096, low=1024)
        assert transport.get_write_buffer_limits() == inner.get_write_buffer_limits()
        assert transport.is_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        transport.resume_reading()
        assert transport.get_protocol() is inner.get_protocol()
        replacement = asyncio.Protocol()
        transport.set_protocol(replacement)
        assert inner.get_protocol() is replacement
        assert transport.can_write_eof()
        transport.write(b"bye")
        transport.write_eof()  # sends what is queued first
        theirs.settimeout(10)
        assert theirs.recv(16) == b"bye"
        assert theirs.recv(16) == b""  # end of stream
        transport.close()
