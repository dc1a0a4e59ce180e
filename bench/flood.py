"""``python bench/flood.py``: goodput under a flood that ignores Retry-After, against capacity.

For the demo ``mlp`` with batching on and off: capacity is what 32 closed-loop connections
get; the flood is 256 connections that resend at once after every answer, 503s included.
Rounds alternate between the two servers and the two loads, so that the ratios compare
runs made under the same conditions (the client shares the cores with the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from paced_client import closed_run
from run import enable_auth, make_bodies, make_repositories
from servers import HOST, running, tensorgate

CAPACITY_CONNECTIONS = 32
FLOOD_CONNECTIONS = 256


def main() -> None:
    """Print capacity, flood goodput and their ratio for batching on and off."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tensorgate-flood-") as tmp:
        work = Path(tmp)
        repos = make_repositories(work)
        payload = make_bodies(work)[("mlp", "tensorgate")].read_bytes()
        env = enable_auth()
        token = os.environ["BENCH_BEARER_TOKEN"]
        figures: dict[tuple[str, int], list[float]] = {}
        shares: dict[str, list[float]] = {}
        with (
            running(tensorgate(repos["on"], 1), "/v2/health/ready", work / "on.log", env) as on,
            running(tensorgate(repos["off"], 1), "/v2/health/ready", work / "off.log", env) as off,
        ):
            for _ in range(args.rounds):
                for kind, server in (("on", on), ("off", off)):
                    for conns in (CAPACITY_CONNECTIONS, FLOOD_CONNECTIONS):
                        result = asyncio.run(
                            closed_run(
                                HOST, server.port, "/v2/models/mlp/infer", payload, conns,
                                args.seconds, token=token,
                            )
                        )  # fmt: skip
                        figures.setdefault((kind, conns), []).append(result.goodput)
                        if conns == FLOOD_CONNECTIONS:
                            total = sum(result.statuses.values())
                            shares.setdefault(kind, []).append(result.statuses[503] / total)
        for kind in ("on", "off"):
            capacity = sum(figures[(kind, CAPACITY_CONNECTIONS)]) / args.rounds
            flood = sum(figures[(kind, FLOOD_CONNECTIONS)]) / args.rounds
            rejected = sum(shares[kind]) / args.rounds
            print(  # the report of a command-line tool
                f"batching {kind}: capacity {capacity:,.0f} req/s, flood {flood:,.0f} req/s "
                f"({flood / capacity:.0%}), 503 share in the flood {rejected:.0%}"
            )


if __name__ == "__main__":
    main()
