"""The shared-memory regions registered through the API, kept where a restarted worker
reads them.

The run directory of ``tensorgate serve --workers N`` holds ``regions.json``: every
region registered on the server (each worker holds them all), with its subject. A worker
started by the supervisor after a crash registers them too, so a request naming a region
finds it whichever worker takes it. Written under ``changes_lock``, replaced atomically.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from gateway.protocol.shm_regions import RegionSpec

logger = logging.getLogger(__name__)

REGIONS_FILE = "regions.json"

Registration = tuple[str, RegionSpec]
"""A region and the subject it belongs to."""


def read_regions(directory: Path) -> list[Registration]:
    """The regions recorded in ``directory``; none without a file (or with a broken one,
    with a warning)."""
    try:
        document = json.loads((directory / REGIONS_FILE).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s: %s", directory / REGIONS_FILE, exc)
        return []
    found: list[Registration] = []
    for entry in document.get("regions", []) if isinstance(document, dict) else []:
        try:
            spec = RegionSpec(entry["name"], entry["key"], entry["offset"], entry["byte_size"])
            found.append((str(entry["subject"]), spec))
        except (KeyError, TypeError):
            logger.warning("ignoring a malformed entry of %s", directory / REGIONS_FILE)
    return found


def record_regions(directory: Path, registrations: list[Registration]) -> None:
    """Record every region registered now (call it holding ``changes_lock``)."""
    document = {
        "regions": [{"subject": subject, **spec.status()} for subject, spec in registrations]
    }
    staged = directory / f"{REGIONS_FILE}.{os.getpid()}"
    staged.write_text(json.dumps(document, sort_keys=True))
    os.replace(staged, directory / REGIONS_FILE)
