"""The floor of ``make bench``: a bare ASGI app on uvicorn that reads the request body and
sends a fixed answer. No framework, no parsing, no model: what any Python server on
uvicorn pays per request before doing anything (one uvicorn worker, default settings but
the log level)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANSWER = (
    b'{"model_name":"mlp","model_version":"1","outputs":[{"name":"logits","datatype":"FP32",'
    b'"shape":[1,10],"data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]}]}'
)
"""The fixed answer of both floors: an Open Inference Protocol response of one row."""

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(ANSWER)).encode()),
    ],
}
_BODY = {"type": "http.response.body", "body": ANSWER}


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Read the whole body of any HTTP request, then answer ``ANSWER``."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)


def main() -> None:
    """Serve on 127.0.0.1 with one uvicorn worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
