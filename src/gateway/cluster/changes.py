"""The repository changes made through the API, kept where a restarted worker reads them.

The run directory of ``tensorgate serve --workers N`` holds ``changes.json``: for each
model changed through the repository API, the last change (a load, with the request's
body, or an unload). A worker started by the supervisor after a crash loads the
repository as they say, so it serves what its siblings serve. The file is replaced
atomically (written beside it, then renamed), and ``changes.lock`` serialises changes
across the workers: one change at a time for the whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

CHANGES_FILE = "changes.json"
LOCK_FILE = "changes.lock"

Action = Literal["load", "unload"]


@dataclass(frozen=True, slots=True)
class Change:
    """The last change made to one model: ``body`` is the load request's body, if any."""

    action: Action
    body: dict[str, Any] | None = None


def read_changes(directory: Path) -> dict[str, Change]:
    """The changes recorded in ``directory``; none when there is no file (or a broken one,
    with a warning: the worker then loads the repository as it is)."""
    try:
        document = json.loads((directory / CHANGES_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s: %s", directory / CHANGES_FILE, exc)
        return {}
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict):
        logger.warning("ignoring %s: no 'models' object", directory / CHANGES_FILE)
        return {}
    changes = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or entry.get("action") not in ("load", "unload"):
            continue
        body = entry.get("body")
        changes[name] = Change(entry["action"], body if isinstance(body, dict) else None)
    return changes


def record_change(directory: Path, name: str, change: Change) -> None:
    """Record ``change`` of ``name`` (call it holding ``changes_lock``)."""
    changes = read_changes(directory)
    changes[name] = change
    document = {
        "models": {
            model: {"action": each.action, "body": each.body} for model, each in changes.items()
        }
    }
    staged = directory / f"{CHANGES_FILE}.{os.getpid()}"
    staged.write_text(json.dumps(document, sort_keys=True))
    os.replace(staged, directory / CHANGES_FILE)


@contextlib.asynccontextmanager
async def changes_lock(directory: Path) -> AsyncIterator[None]:
    """Hold the server-wide lock on repository changes (an exclusive ``flock``).

    Each holder opens its own descriptor, so the lock also orders two changes within one
    process; the kernel releases it when a holder dies. Waiting happens in a thread; when
    the waiter is cancelled, the lock is released as soon as that thread gets it.
    """
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    acquired = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(acquired)
    except BaseException:
        acquired.add_done_callback(lambda _: os.close(fd))
        raise
    try:
        yield
    finally:
        os.close(fd)
