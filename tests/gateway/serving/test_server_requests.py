"""The httptools protocols tell the app how many requests the process is answering."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.api.pipeline.endpoint import SERVER_REQUESTS
from gateway.serving.coalescing import CoalescingHttpToolsProtocol
from support.protocols import REQUEST, protocol_limits

GUARD_S = 10
LIMITS = protocol_limits(0.5)


async def test_each_request_sees_the_requests_in_progress_itself_included() -> None:
    seen: list[int] = []
    first_in, both_in = asyncio.Event(), asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(len(scope[SERVER_REQUESTS]))
        (first_in if len(seen) == 1 else both_in).set()
        await both_in.wait()  # the first stays in progress until the second arrives
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    loop = asyncio.get_running_loop()
    config = Config(app=app, lifespan="off", log_level="warning")
    state = ServerState()
    server = await loop.create_server(
        lambda: CoalescingHttpToolsProtocol(
            config=config, server_state=state, app_state={}, _loop=loop, limits=LIMITS
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        alone_reader, alone_writer = await asyncio.open_connection("127.0.0.1", port)
        alone_writer.write(REQUEST)
        await asyncio.wait_for(first_in.wait(), GUARD_S)
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", port)
        other_writer.write(REQUEST)
        for reader in (alone_reader, other_reader):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD_S)
            assert head.startswith(b"HTTP/1.1 200")
        for writer in (alone_writer, other_writer):
            writer.close()
    finally:
        server.close()
    # The first request was alone; the second arrived while the first was answered.
    assert seen == [1, 2]
