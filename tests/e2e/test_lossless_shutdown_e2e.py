"""SIGTERM while the event loop is busy with a large request (issue 20, item 3): every
request sent whole before the signal is answered, whether the server had read it, only
accepted its connection, or left that connection in the listen backlog; the process exits
with status 0, in one-process and ``--workers 2`` modes alike."""

from __future__ import annotations

import fcntl
import re
import socket
import termios
import threading
import time
from pathlib import Path

import pytest

from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]

GUARD_S = 60.0  # socket and wait timeouts: hang guards only
LARGE_ROWS = 8000  # mlp rows: about 8 MB of JSON, a decode that holds the loop
SMALL_REQUESTS = 20


def infer(rows: int) -> bytes:
    """A whole ``mlp`` inference request of ``rows`` rows."""
    data = ",".join(["0.5"] * rows * 256)
    tensor = f'{{"name":"input","shape":[{rows},256],"datatype":"FP32","data":[{data}]}}'
    body = f'{{"inputs":[{tensor}]}}'.encode()
    head = b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Exchange:
    """One connection: a request sent whole, then everything read until the server
    closes the connection (in a thread of its own)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=GUARD_S)
        self.received = b""
        self.reset = False
        self._sent = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, request: bytes) -> None:
        """Send ``request`` whole, now (it must fit the socket buffers)."""
        self.sock.sendall(request)
        self._sent.set()

    def answer_in_background(self, request: bytes = b"") -> None:
        """Send ``request`` (if any) and read the answer, in a thread."""
        self._thread = threading.Thread(target=self._run, args=(request,), daemon=True)
        self._thread.start()

    def _run(self, request: bytes) -> None:
        try:
            if request:
                self.send(request)
            while chunk := self.sock.recv(1 << 20):
                self.received += chunk
        except ConnectionResetError:
            self.reset = True
        finally:
            self._sent.set()
            self.sock.close()

    def read_by_the_server(self, server_port: int) -> None:
        """Return once every byte sent is in and the server has read it all (guarded):
        from then on the server is busy decoding the body."""
        assert self._sent.wait(GUARD_S)
        client_port = self.sock.getsockname()[1]
        deadline = time.monotonic() + GUARD_S
        while _unsent(self.sock) or _unread_by_server(server_port, client_port):
            assert time.monotonic() < deadline, "the server never read the request"

    def status(self) -> int:
        """The status of the whole answer received (its body as long as it says)."""
        assert self._thread is not None
        self._thread.join(GUARD_S)
        assert not self.reset, f"reset after {self.received[:80]!r}"
        head, _, body = self.received.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        assert length is not None, f"no whole answer: {self.received[:80]!r}"
        assert len(body) == int(length.group(1)), f"a cut answer: {head!r}"
        return int(head.split(b" ", 2)[1])


def _unsent(sock: socket.socket) -> int:
    """Bytes of ``sock``'s sent data not yet acknowledged by the server's kernel."""
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4)), "little")


def _unread_by_server(server_port: int, client_port: int) -> int:
    """Bytes the server's side of the connection from ``client_port`` holds unread."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return int(queues.split(":")[1], 16)
    return 0  # the server has not accepted it, or it is gone: nothing it holds


def busy_then_sigterm(server: ServerProcess) -> list[Exchange]:
    """A large request keeping the server busy, small ones sent whole on their own
    connections meanwhile, then SIGTERM; returns every exchange, the large one first."""
    host, port = server.base_url.removeprefix("http://").split(":")
    address = (host, int(port))
    large = Exchange(address)
    large.answer_in_background(infer(LARGE_ROWS))
    large.read_by_the_server(int(port))
    small = [Exchange(address) for _ in range(SMALL_REQUESTS)]
    request = infer(1)
    for exchange in small:
        exchange.send(request)
    server.terminate()
    for exchange in small:
        exchange.answer_in_background()
    return [large, *small]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_request_sent_before_sigterm_is_answered(workers: str) -> None:
    with ServerProcess(["--models", str(DEMO_MODELS), "--no-auth", "--workers", workers]) as server:
        if workers != "1":  # one process: its start line came once it had started
            for _ in range(int(workers)):
                server.wait_for(re.compile(r"Application startup complete"))
        exchanges = busy_then_sigterm(server)
        statuses = [exchange.status() for exchange in exchanges]
        code = server.stop()
    assert statuses == [200] * len(exchanges)
    assert code == 0
    assert "Traceback" not in "".join(server.lines)
