"""``python bench/flood_process.py PORT PATH BODY_FILE TOKEN CONNECTIONS SECONDS``: a flood
in a process of its own, so that its client work is not taken from the client it is
measured against. Each connection sends its next request as soon as the last is
answered, 503s included (it ignores Retry-After); the process prints ``flowing`` once
as many answers as connections have come, and its status counts as JSON at the end."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from paced_client import PacedResult, closed_run

FLOWING = "flowing"


def main() -> None:
    """Flood, then print the status counts."""
    port, path, body_file, token, connections, seconds = sys.argv[1:7]
    body = Path(body_file).read_bytes()

    async def flood() -> PacedResult:
        flowing = asyncio.Event()
        run = asyncio.ensure_future(
            closed_run(
                "127.0.0.1",
                int(port),
                path,
                body,
                int(connections),
                float(seconds),
                token=token,
                flowing=flowing,
            )
        )
        waiter = asyncio.ensure_future(flowing.wait())
        await asyncio.wait([run, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        print(FLOWING, flush=True)
        return await run

    result = asyncio.run(flood())
    print(json.dumps({str(status): n for status, n in result.statuses.items()}), flush=True)


if __name__ == "__main__":
    main()
