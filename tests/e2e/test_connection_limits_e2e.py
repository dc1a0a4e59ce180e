"""Connection limits against a real server and raw sockets (issue 10, items 4, 5 and 6).

Header timeout, body idle timeout, keep-alive timeout, head size cap (431), close after a
413, and the connection cap; on the default ``coalescing`` protocol and on the stock
``httptools`` one, which share ``LimitedHttpToolsProtocol``. Every socket has a timeout,
so a limit that does not hold fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.app import TEST_SECRET
from support.paths import DEMO_MODELS
from support.scrape import parse_samples, sample
from support.server_process import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]

LIMIT_S = 1.0  # header, body idle and keep-alive timeouts of the server under test
GUARD_S = 10.0  # socket timeout: far above every limit, a hang guard only
MAX_HEAD = 8192
MAX_BODY = 65536
PIXELS = b"[" + b",".join([b"0"] * 64) + b"]"
BODY = b'{"inputs":[{"name":"pixels","shape":[1,64],"datatype":"FP32","data":%s}]}' % PIXELS

LIMITS_ENV = {
    "TENSORGATE_AUTH__SECRET": TEST_SECRET,
    "TENSORGATE_HEADER_TIMEOUT_S": str(LIMIT_S),
    "TENSORGATE_BODY_IDLE_TIMEOUT_S": str(LIMIT_S),
    "TENSORGATE_KEEP_ALIVE_TIMEOUT_S": str(LIMIT_S),
    "TENSORGATE_MAX_HEADER_BYTES": str(MAX_HEAD),
    "TENSORGATE_MAX_REQUEST_BODY_BYTES": str(MAX_BODY),
}


@pytest.fixture(scope="module", params=["coalescing", "httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    args = ["--models", str(DEMO_MODELS), "--no-auth", "--http", request.param]
    with ServerProcess(args, LIMITS_ENV) as process:
        yield process


def connect(server: ServerProcess) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=GUARD_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer included)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a ``content-length``, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def timed_answer(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    answer = read_until_closed(sock)
    return answer, time.monotonic() - started


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def infer_head(length: int) -> bytes:
    return (
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def test_half_a_head_is_answered_408_and_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        answer, elapsed = timed_answer(sock)
    assert status(answer) == 408
    assert b"connection: close" in answer
    assert LIMIT_S * 0.9 <= elapsed < LIMIT_S + 3
    server.wait_for(re.compile(r"closing the connection from 127\.0\.0\.1:\d+: headers not"))


def test_a_head_trickled_byte_by_byte_is_cut_at_the_header_timeout(server: ServerProcess) -> None:
    """The header timeout counts from the start, not between bytes (slowloris)."""
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in head:  # one byte every 50 ms, for up to 50 s: paced, not a wait
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status(answer) == 408
    assert elapsed < LIMIT_S + 3


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        answer, elapsed = timed_answer(sock)
    assert status(answer) == 408
    assert elapsed < LIMIT_S + 3


def test_a_body_that_stops_arriving_is_cut(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(infer_head(len(BODY)) + BODY[:20])
        answer, elapsed = timed_answer(sock)
    assert status(answer) == 408
    assert b"request body stalled" in answer
    assert elapsed < LIMIT_S + 3
    server.wait_for(re.compile(r"closing the connection from 127\.0\.0\.1:\d+: request body"))


def test_a_slow_but_steady_body_passes(server: ServerProcess) -> None:
    """Ten pieces, a gap of half the idle timeout between each: longer than the timeout
    in all, never idle for it."""
    pieces = [BODY[i : i + len(BODY) // 10 + 1] for i in range(0, len(BODY), len(BODY) // 10 + 1)]
    with connect(server) as sock:
        sock.sendall(infer_head(len(BODY)))
        started = time.monotonic()
        for piece in pieces:
            time.sleep(LIMIT_S / 2)  # the pace of a slow client, not a wait for the server
            sock.sendall(piece)
        assert time.monotonic() - started > LIMIT_S * 2
        answer = sock.recv(65536)
    assert status(answer) == 200


def test_an_idle_keep_alive_connection_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, elapsed = timed_answer(sock)
    assert status(answer) == 200
    assert answer.endswith(b'{"live":true}')  # closed after the answer, nothing more sent
    assert elapsed < LIMIT_S + 3


def test_a_head_over_the_cap_is_431(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n")
        answer = read_until_closed(sock)
    assert status(answer) == 431
    server.wait_for(re.compile(r"closing the connection from 127\.0\.0\.1:\d+: request head too"))


def test_an_unfinished_two_mib_head_is_431_before_it_is_all_sent(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 2 * 1024 * 1024:
                sock.sendall(b"a" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
    assert status(answer) == 431


def rss_mib(server: ServerProcess) -> float:
    pid = re.search(r"Started server process \[(\d+)\]", "".join(server.lines))
    assert pid is not None
    status_text = Path(f"/proc/{pid.group(1)}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status_text)
    assert found is not None
    return int(found.group(1)) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_unfinished_big_heads_cost_no_memory(server: ServerProcess) -> None:
    """Issue 10, item 5: 100 connections each sending an unfinished 2 MiB header (without
    the cap: about +200 MiB of RSS, most of it kept)."""
    before = rss_mib(server)
    socks = [connect(server) for _ in range(100)]
    try:
        for sock in socks:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(2 * 1024 // 64):  # 2 MiB each, spread over all connections
            for sock in socks:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(b"a" * 65536)
        during = rss_mib(server)
        assert all(status(read_until_closed(sock)) == 431 for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    assert during - before < 50, f"RSS {before:.0f} -> {during:.0f} MiB"
    assert rss_mib(server) - before < 50


def endless_chunked_body(server: ServerProcess, path: bytes) -> tuple[bytes, list[OSError], int]:
    """POST a chunked body that never ends to ``path``; the answer, the sender's failure
    (none if the server kept reading), and the bytes it got to send."""
    sock = connect(server)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path)
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    sent = [0]
    failure: list[OSError] = []

    def keep_sending() -> None:
        try:
            while sent[0] < 256 * 1024 * 1024:  # the old server swallowed all of it
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError as exc:
            failure.append(exc)

    sender = threading.Thread(target=keep_sending, daemon=True)
    with sock:
        sender.start()
        answer = read_until_closed(sock)
        sender.join(GUARD_S)
    return answer, failure, sent[0]


def test_the_connection_closes_after_a_413_and_the_rest_of_the_body_is_not_read(
    server: ServerProcess,
) -> None:
    """After the 413 the server closes the connection, so the sender fails instead of
    feeding it gigabytes."""
    answer, failure, sent = endless_chunked_body(server, b"/v2/models/digits/infer")
    assert status(answer) == 413
    assert b"connection: close" in answer.lower()
    assert failure, f"the server kept reading: {sent} bytes taken"
    assert sent < 64 * 1024 * 1024


def test_a_refusal_before_the_body_closes_the_connection(server: ServerProcess) -> None:
    """An answer sent before the body was read (here 404) also stops the reading."""
    answer, failure, sent = endless_chunked_body(server, b"/v2/models/nothing/infer")
    assert status(answer) == 404
    assert failure, f"the server kept reading: {sent} bytes taken"
    assert sent < 64 * 1024 * 1024


def test_a_content_length_body_answered_early_is_read_to_its_end_and_the_connection_kept(
    server: ServerProcess,
) -> None:
    """A declared body under the cap is bounded: after an early 404 the server reads and
    drops the rest (a client still sending it is not reset) and serves the next request."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /v2/models/nothing/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % MAX_BODY
        )
        assert status(read_response(sock)) == 404  # answered before the body was sent
        sock.sendall(b" " * MAX_BODY)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status(read_until_closed(sock)) == 200


def test_connections_past_the_cap_are_answered_503_at_once() -> None:
    cap = 8
    env = {"TENSORGATE_AUTH__SECRET": TEST_SECRET, "TENSORGATE_MAX_CONNECTIONS": str(cap)}
    with ServerProcess(["--models", str(DEMO_MODELS), "--no-auth"], env) as server:
        held = [connect(server) for _ in range(cap)]
        try:
            # One request on each: the server has taken them all in once each is answered.
            for sock in held:
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status(sock.recv(65536)) == 200
            with connect(server) as extra:
                answer = read_until_closed(extra)
            assert status(answer) == 503
            assert b"connection limit" in answer
        finally:
            for sock in held:
                sock.close()
        # Room again once they are gone (each close is seen by the server in its own time).
        deadline = time.monotonic() + GUARD_S
        while True:
            with connect(server) as sock:
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                if status(sock.recv(65536)) == 200:
                    break
            assert time.monotonic() < deadline, "the freed connections were never counted out"


@pytest.mark.parametrize(
    ("path", "partial"),
    [
        (b"/v2/models/digits/infer", BODY[:30]),
        (b"/models/digits/predict", b'{"inputs": {"pixels": [[0, 0'),
    ],
    ids=["protocol", "typed"],
)
def test_a_client_leaving_mid_body_is_499_and_logs_no_error(
    server: ServerProcess, path: bytes, partial: bytes
) -> None:
    """Issue 10, item 12, on both inference routes: no ERROR line, no traceback, and the
    request is counted as 499 (nothing was sent), not as a 4xx or 5xx."""
    before = len(server.lines)
    gone = (
        'tensorgate_inference_requests_total{model="digits",protocol="http",'
        'status="499",version="1"}'
    )
    counted = metric(server, gone)
    with connect(server) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n%s" % (path, partial)
        )
    deadline = time.monotonic() + GUARD_S
    while metric(server, gone) == counted:  # each reading a full HTTP round trip
        assert time.monotonic() < deadline, "the departure was never recorded as 499"
    # A request after it marks where its log lines end.
    marker = f"/v2/health/live?after-{time.monotonic_ns()}"
    with connect(server) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % marker.encode())
        assert status(read_until_closed(sock)) == 200
    server.wait_for(re.compile(re.escape(marker)))
    log = "".join(server.lines[before:])
    assert "ERROR" not in log
    assert "Traceback" not in log
    metrics = parse_samples(httpx.get(f"{server.base_url}/metrics", timeout=GUARD_S).text)
    for code in ("400", "500"):
        assert not sample(
            metrics,
            "tensorgate_inference_requests_total",
            model="digits",
            protocol="http",
            status=code,
            version="1",
        )


def metric(server: ServerProcess, series: str) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=GUARD_S).text
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
