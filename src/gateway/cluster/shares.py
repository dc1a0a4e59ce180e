"""The fair-share views the worker processes of one server send each other: each worker's
requests in progress per caller, its connections left unread per caller, and its active
callers' weights (issue 20; docs/operations.md#fair-share).

Each worker binds a Unix datagram socket in the run directory (``shares-<pid>.sock``) and,
on a timer of its event loop (never per request), sends its view to every sibling when
it changed, and at least every ``HEARTBEAT_TICKS`` ticks. A datagram is one whole
message: a reader never sees half a view. What a worker knows of the others is the
latest view from each, dropped

- at once when sending to that sibling fails (its socket refuses: the process died, and
  the kernel closed its socket with it), and
- when it is older than ``max_age_s`` (a sibling stuck or gone without a word), so a view
  can never hold a caller back for longer than that.

Nothing here is on the request path, and with one process none of it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)

SOCKET_PREFIX = "shares-"
SOCKET_SUFFIX = ".sock"
HEARTBEAT_TICKS = 4
"""A view is sent at least every this many ticks, changed or not."""
DISCOVER_S = 0.5
"""How often the run directory is listed for siblings started since."""
MAX_FLOWS = 1024
"""Callers per view at most (those with the most requests in progress): a datagram stays
far under the socket's buffer."""
_MAX_DATAGRAM = 256 * 1024


@dataclass(frozen=True, slots=True)
class View:
    """One worker's share of the load: requests in progress per caller, the callers
    active there with their weights, and its connections left unread per caller."""

    in_progress: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)


def encode_view(view: View) -> bytes:
    """``view`` as one datagram (its ``MAX_FLOWS`` busiest callers)."""
    in_progress, weights, waiting = view.in_progress, view.weights, view.waiting
    if len(weights) > MAX_FLOWS or len(in_progress) > MAX_FLOWS or len(waiting) > MAX_FLOWS:
        busiest = sorted(in_progress, key=in_progress.__getitem__, reverse=True)[:MAX_FLOWS]
        in_progress = {flow: in_progress[flow] for flow in busiest}
        kept = [flow for flow in busiest if flow in weights]
        kept += [flow for flow in weights if flow not in in_progress][: MAX_FLOWS - len(kept)]
        weights = {flow: weights[flow] for flow in kept}
        waiting = {flow: waiting[flow] for flow in kept if flow in waiting}
    return orjson.dumps({"n": in_progress, "w": weights, "h": waiting})


def decode_view(data: bytes) -> View | None:
    """The view a datagram carries, or None for anything malformed."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    counts, weights, held = message.get("n"), message.get("w"), message.get("h", {})
    if not isinstance(counts, dict) or not isinstance(weights, dict) or not isinstance(held, dict):
        return None
    in_progress = {k: v for k, v in counts.items() if type(v) is int and v > 0}
    shares = {k: float(v) for k, v in weights.items() if type(v) in (int, float) and v > 0}
    waiting = {k: v for k, v in held.items() if type(v) is int and v > 0}
    return View(in_progress, shares, waiting)


def socket_path(directory: Path, pid: int) -> Path:
    """Where the worker with process id ``pid`` receives views."""
    return directory / f"{SOCKET_PREFIX}{pid}{SOCKET_SUFFIX}"


class ShareExchange:
    """This worker's end of the exchange: sends ``local()`` every ``tick_s`` and hands the
    siblings' live views to ``on_views`` whenever they change (or one drops out)."""

    def __init__(
        self,
        directory: Path,
        local: Callable[[], View],
        on_views: Callable[[list[View]], None],
        *,
        tick_s: float,
        max_age_s: float,
        pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._path = socket_path(directory, os.getpid() if pid is None else pid)
        self._local = local
        self._on_views = on_views
        self._tick_s = tick_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._siblings: set[str] = set()
        self._views: dict[str, tuple[float, View]] = {}  # sibling path -> (received, view)
        self._changed = False
        self._sent = b""
        self._ticks = 0
        self._discovered = float("-inf")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind this worker's socket and start the timer on ``loop``."""
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()  # a dead process of the same id left it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self._path))
        os.chmod(self._path, 0o600)
        self._socket, self._loop = sock, loop
        loop.add_reader(sock.fileno(), self._receive)
        self._timer = loop.call_soon(self._tick)

    def close(self) -> None:
        """Stop the timer, close the socket and remove its file."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._socket is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    def tick(self) -> None:
        """Send this worker's view, drop stale ones, report a change (the timer's work)."""
        self._receive()  # what came while this loop was busy is not stale
        now = self._clock()
        if now - self._discovered >= DISCOVER_S:
            self._discover()
            self._discovered = now
        data = encode_view(self._local())
        self._ticks += 1
        if data != self._sent or self._ticks >= HEARTBEAT_TICKS:
            self._send(data)
        for path, (received, _view) in list(self._views.items()):
            if now - received > self._max_age_s:
                del self._views[path]
                self._changed = True
        if self._changed:
            self._changed = False
            self._on_views([view for _received, view in self._views.values()])

    def _tick(self) -> None:
        try:
            self.tick()
        except Exception:  # the exchange must never stop the serving loop
            logger.exception("fair-share exchange tick failed")
        if self._loop is not None and self._socket is not None:
            self._timer = self._loop.call_later(self._tick_s, self._tick)

    def _discover(self) -> None:
        own = str(self._path)
        self._siblings = {
            str(path)
            for path in self._directory.glob(f"{SOCKET_PREFIX}*{SOCKET_SUFFIX}")
            if str(path) != own
        }

    def _send(self, data: bytes) -> None:
        sock = self._socket
        if sock is None:
            return
        self._sent, self._ticks = data, 0
        for path in list(self._siblings):
            try:
                sock.sendto(data, path)
            except (ConnectionRefusedError, FileNotFoundError):
                self._gone(path)
            except OSError:  # a full buffer (a stalled sibling): its view ages out
                continue

    def _gone(self, path: str) -> None:
        """A sibling's socket refuses: its process died; forget it now."""
        self._siblings.discard(path)
        if self._views.pop(path, None) is not None:
            self._changed = True
        with contextlib.suppress(OSError):
            os.unlink(path)  # a dead process's socket file, as the control siblings do

    def _receive(self) -> None:
        sock = self._socket
        while sock is not None:
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            view = decode_view(data)
            if view is None or not isinstance(sender, str) or not sender:
                continue
            known = self._views.get(sender)
            self._views[sender] = (self._clock(), view)
            self._siblings.add(sender)
            if known is None or known[1] != view:
                self._changed = True
