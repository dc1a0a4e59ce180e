"""``make soak`` (``python -m soak`` with bench/ on the path): see the package docstring
and docs/benchmarks.md. Exits 1 when a target is not met."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from soak.session import run
from soak.summary import report
from soak.verdict import targets


def main() -> None:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="length (default 600)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="requests/s, all clients (default 200)"
    )
    parser.add_argument("--callers", type=int, default=3, help="token subjects (default 3)")
    parser.add_argument(
        "--connections", type=int, default=4, help="connections per caller (default 4)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (logs, repository)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tensorgate-soak-"))
    try:
        result = asyncio.run(run(work, args.seconds, args.rate, args.callers, args.connections))
    finally:
        if args.keep:
            sys.stderr.write(f"scratch directory kept: {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    sys.exit(0 if all(ok for _, _, ok in targets(result)) else 1)


if __name__ == "__main__":
    main()
