"""Runs a real ``tensorgate serve`` process on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from support.paths import TENSORGATE

_LISTENING = re.compile(r"Uvicorn running on (https?://127\.0\.0\.1:\d+)")
_TENSORGATE = str(TENSORGATE)


class ServerProcess:
    """Starts the server with ``--port 0`` and learns the port from uvicorn's log line.

    One worker process unless ``args`` name ``--workers`` (``auto``, the default of
    ``tensorgate serve``, would give as many as this machine has CPUs), and no gRPC service
    unless they name ``--grpc-port`` (its default port, 8001, is one for the whole machine)."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        workers = [] if "--workers" in args else ["--workers", "1"]
        grpc = [] if "--grpc-port" in args else ["--grpc-port", "0"]
        self.args = [
            _TENSORGATE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *workers,
            *grpc,
            *args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self.base_url = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        self._process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.base_url = self.wait_for(_LISTENING).group(1)
        return self

    @property
    def pid(self) -> int:
        """The process id of ``tensorgate serve`` (the supervisor, with ``--workers N``)."""
        assert self._process is not None
        return self._process.pid

    def peak_rss_bytes(self) -> int:
        """The server process's peak resident memory so far (``VmHWM``), Linux only."""
        assert self._process is not None
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(kib) * 1024

    def _pump(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        """Block until the server logs a line matching ``pattern`` (guarded by ``timeout``)."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no {pattern.pattern!r} in: {''.join(self.lines)}") from None
            if line is None:
                raise RuntimeError(f"server exited early: {''.join(self.lines)}")
            self.lines.append(line)
            if match := pattern.search(line):
                return match

    def kill(self) -> None:
        """SIGKILL by PID: the process dies at once, its connections reset."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM by PID, without waiting."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM by PID, wait for the exit, return the exit code."""
        assert self._process is not None
        self.terminate()
        code = self._process.wait(timeout=30)
        while (line := self._lines.get(timeout=30)) is not None:
            self.lines.append(line)
        return code

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()


def serving(repository: Path, *args: str) -> ServerProcess:
    """``tensorgate serve`` of ``repository`` at info level (the start line names the
    port), signed with the tests' secret; use it as a context manager."""
    from support.app import TEST_SECRET

    return ServerProcess(
        ["--models", str(repository), "--log-level", "info", *args],
        {"TENSORGATE_AUTH__SECRET": TEST_SECRET},
    )
