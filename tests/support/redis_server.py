"""A throwaway ``redis-server`` on a free loopback port, stopped by its PID.

``make unit`` and ``make e2e`` install Debian's redis-server into the virtual environment
(see the Makefile); a machine that has one on its PATH uses that one."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from support.workers import free_port

READY_S = 30.0  # hang guard: the server says when it accepts connections


def redis_server_binary() -> str:
    """The redis-server to run; fails with what to do when there is none."""
    beside = Path(sys.executable).with_name("redis-server")
    found = str(beside) if beside.exists() else shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: `make e2e` (or `make unit`) installs Debian's")
    return found


class RedisServer:
    """``redis-server`` without persistence, on ``port``; a context manager."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = [
            redis_server_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", *args,
        ]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> RedisServer:
        self._process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=READY_S)
            except queue.Empty:
                self.stop()
                raise TimeoutError(f"redis-server not ready: {''.join(self.output)}") from None
            if line is None:
                raise RuntimeError(f"redis-server exited: {''.join(self.output)}")
            self.output.append(line)
            if "Ready to accept connections" in line:
                return self

    def _pump(self, lines: queue.Queue[str | None]) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            lines.put(line)
        lines.put(None)

    def stop(self) -> None:
        """SIGTERM by PID, then wait (SIGKILL if it will not go)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=READY_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
