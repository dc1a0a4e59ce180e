"""Starts and stops the servers under test on free loopback ports, and reads their
processes: workers, RSS, open file descriptors."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running server process and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    grpc_port: int = 0
    """Where tensorgate serves gRPC (0: a server without it)."""

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://{HOST}:{self.port}"

    @property
    def grpc_target(self) -> str:
        """127.0.0.1:<grpc_port>, as gRPC channels and h2load's URL take it."""
        return f"{HOST}:{self.grpc_port}"

    def worker_pids(self) -> list[int]:
        """The workers a supervisor spawned (by multiprocessing's spawn start method, as
        uvicorn's does); none for a server of one process."""
        return [pid for pid in _children(self.process.pid) if "spawn_main" in _cmdline(pid)]

    def worker_processes(self) -> int:
        """How many processes serve requests: the spawned workers, or the process itself."""
        return len(self.worker_pids()) or 1

    def pids(self) -> list[int]:
        """The process and every descendant (the workers)."""
        return [self.process.pid, *_children(self.process.pid)]

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children (the workers)."""
        return sum(_rss(pid) for pid in self.pids())

    def open_files(self) -> int:
        """Open file descriptors of the process and its children."""
        return sum(_open_files(pid) for pid in self.pids())


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found + [g for c in found for g in _children(c)]


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _open_files(pid: int) -> int:
    with contextlib.suppress(OSError):
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    return 0


def _parent_death_signal() -> Callable[[], None] | None:
    """What a child runs before exec so that it gets SIGTERM when the benchmark's process
    dies, however it dies, and no server outlives it (Linux ``PR_SET_PDEATHSIG``); the
    function is looked up here, in the parent, so the child only calls it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arm() -> None:
        prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG

    return arm


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)  # a harness polling a child process, not a test
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S} s; see {log}")


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """For a server with no HTTP port: until ``port`` takes a TCP connection. A gRPC
    server listens once its port is added, just before it starts; a call that connects
    in between waits in the backlog and is served once it has."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2):
            return
        time.sleep(0.2)  # a harness polling a child process, not a test
    raise RuntimeError(f"server not listening after {READY_TIMEOUT_S} s; see {log}")


def start(
    command: list[str], log: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Server:
    """Start ``command`` (``{port}`` filled in: ``port``, or a free one; ``{grpc_port}``:
    another free one), its output appended to ``log``. Call it from the main thread: the
    parent-death signal is tied to the thread that starts the child."""
    port = port or free_port()
    grpc_port = free_port() if any("{grpc_port}" in part for part in command) else 0
    argv = [
        part.replace("{port}", str(port)).replace("{grpc_port}", str(grpc_port)) for part in command
    ]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=_parent_death_signal(),
        )
    return Server(process, port, grpc_port)


def stop(server: Server) -> None:
    """SIGINT (a graceful shutdown), SIGKILL if it takes more than 30 s; reaped either way."""
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextlib.contextmanager
def running(
    command: list[str], ready_path: str | None, log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start ``command`` on a free port, wait until ``ready_path`` answers (None: a gRPC
    server without HTTP, until its gRPC port takes a connection), stop it."""
    server = start(command, log, env)
    try:
        if ready_path is None:
            _wait_listening(server.process, server.grpc_port, log)
        else:
            _wait_ready(server.process, server.base + ready_path, log)
        yield server
    finally:
        stop(server)


def tensorgate(repository: Path, workers: int | None) -> list[str]:
    """The command line of ``tensorgate serve``, its settings the defaults (log level and
    access log included) but the ports and ``workers`` (None: not passed, the default).
    Each server gets a gRPC port of its own: on the default 8001 the second one started
    would fail to bind (or, with several workers, share the port with another server).
    The port goes in the environment (``env`` execs the server, keeping its PID), which a
    revision from before gRPC ignores, so ``make bench-ab`` can still start one."""
    exe = Path(sys.executable).with_name("tensorgate")
    command = ["env", "TENSORGATE_GRPC__PORT={grpc_port}", str(exe), "serve"]
    command += ["--models", str(repository), "--port", "{port}"]
    return command if workers is None else [*command, "--workers", str(workers)]


def naive(model: Path, *, thread: bool = False) -> list[str]:
    """The command line of the naive baseline; ``thread``: its route is a plain ``def``,
    so ONNX Runtime runs in FastAPI's threadpool rather than on the event loop."""
    script = Path(__file__).with_name("naive_server.py")
    command = [sys.executable, str(script), "--model", str(model), "--port", "{port}"]
    return [*command, "--thread"] if thread else command


def floor(script: str) -> list[str]:
    """The command line of a floor server: ``floor_asgi.py`` or ``floor_starlette.py``;
    ``floor_grpc.py`` serves gRPC only, on the server's ``grpc_port`` (its ``port`` is
    unused: start it with ``running(..., None, ...)``)."""
    port = "{grpc_port}" if script == "floor_grpc.py" else "{port}"
    return [sys.executable, str(Path(__file__).with_name(script)), "--port", port]
