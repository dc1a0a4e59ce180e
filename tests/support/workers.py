"""For tests that start ``tensorgate serve --workers N`` themselves: a port, the start-up,
the worker processes, and requests on new connections that say which worker answered."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from support.paths import DEMO_MODELS


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def workers_started(stream: asyncio.StreamReader, count: int) -> None:
    """Return once ``count`` worker processes have logged that their app started."""
    seen = 0
    while seen < count:
        line = await stream.readline()
        if not line:
            raise RuntimeError("tensorgate exited before its workers started")
        seen += b"Application startup complete" in line


async def spawn_workers(
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    models: Path = DEMO_MODELS,
    workers: str = "2",
) -> asyncio.subprocess.Process:
    """``tensorgate serve --workers 2`` (or ``workers``) of ``models`` on ``port`` (info
    level, stderr piped for ``workers_started``), in an environment without the caller's
    TENSORGATE_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TENSORGATE_")}
    exe = Path(sys.executable).with_name("tensorgate")
    # The default gRPC port, 8001, is one for the whole machine: none unless args name one.
    args = args if "--grpc-port" in args else (*args, "--grpc-port", "0")
    return await asyncio.create_subprocess_exec(
        str(exe), "serve", "--models", str(models), "--port", str(port),
        "--workers", workers, "--log-level", "info", *args,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        env={**clean, **(env or {})},
    )  # fmt: skip


def worker_pids(parent: int) -> list[int]:
    """The spawned worker processes of uvicorn's supervisor ``parent``."""
    children = [
        int(pid)
        for task in Path(f"/proc/{parent}/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]
    return [pid for pid in children if b"spawn_main" in _command_line(pid)]


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # exited meanwhile
        return b""


@dataclass(frozen=True)
class Answer:
    """A response read off a new connection, and the worker process that wrote it."""

    status: int
    body: bytes
    worker: int


async def ask_on_a_new_connection(
    port: int, parent: int, method: str, path: str, body: bytes = b""
) -> Answer:
    """``method path`` on a connection of its own to the server of supervisor ``parent``;
    which worker answered is read from /proc while the connection is still open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        client_port = writer.get_extra_info("sockname")[1]
        head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
        writer.write(f"{head}content-type: application/json\r\n\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        worker = connection_owner(parent, port, client_port)
    finally:
        writer.close()
    return Answer(status, answer, worker)


def connection_owner(parent: int, server_port: int, client_port: int) -> int:
    """The worker of supervisor ``parent`` holding the server side of the loopback
    connection from ``client_port`` to ``server_port``."""
    inode = _server_socket_inode(server_port, client_port)
    target = f"socket:[{inode}]"
    for pid in worker_pids(parent):
        with contextlib.suppress(OSError):  # a worker exiting meanwhile
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    raise LookupError(f"no worker of {parent} holds the connection from port {client_port}")


def _server_socket_inode(server_port: int, client_port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return inode
    raise LookupError(f"no server socket for the connection from port {client_port}")
