"""A floor of ``make bench``: one plain Starlette route, at tensorgate's inference path,
that reads the request body and sends the fixed answer of bench/floor_asgi.py. What a
framework's routing, request and response objects cost on uvicorn, before any parsing
or model (one uvicorn worker, default settings but the log level)."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from floor_asgi import ANSWER


async def infer(request: Request) -> Response:
    """Read the body, answer the fixed one-row response."""
    await request.body()
    return Response(ANSWER, media_type="application/json")


async def ready(request: Request) -> Response:
    """200: the server is up (the benchmark waits for it)."""
    del request
    return Response(b"", status_code=200)


def build() -> Starlette:
    """The app: ``POST /v2/models/{model}/infer`` and ``GET /ready``."""
    return Starlette(
        routes=[
            Route("/v2/models/{model}/infer", infer, methods=["POST"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    )


def main() -> None:
    """Serve on 127.0.0.1 with one uvicorn worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
