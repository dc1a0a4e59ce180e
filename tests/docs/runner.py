"""Runs a page's blocks as a newcomer would paste them (tests/docs/README.md): in a
scratch copy of the checkout, against a live ``tensorgate serve`` of its demo models,
one terminal session per page (exported variables and the directory carry over)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.paths import ROOT

BLOCK_TIMEOUT_S = 120.0
START_TIMEOUT_S = 60.0
DOCS_ADDRESSES = ("127.0.0.1:8000", "localhost:8000")
DOCS_GRPC_ADDRESSES = ("127.0.0.1:8001", "localhost:8001")
TOKENS = {
    "TOKEN": "models:read models:infer",
    "ADMIN_TOKEN": "models:read models:infer admin",
}
_DUMPS = "DOCS_HARNESS_DIR"
# As in one terminal: the shell variables of earlier blocks are set again (exported or
# not, as they were), and the block's own are kept for the next (declare -p), with its
# environment (env -0) and directory.
_SHELL_BLOCK = """\
declare -A __docs_base
for __docs_name in $(compgen -v); do __docs_base[$__docs_name]=1; done
if [ -f "$DOCS_HARNESS_DIR/vars" ]; then . "$DOCS_HARNESS_DIR/vars"; fi
{source}
__docs_keep() {{
  local name
  for name in $(compgen -v); do
    case "$name" in __docs*|BASH*|FUNCNAME|PIPESTATUS|_) continue ;; esac
    if [[ -n "${{__docs_base[$name]+set}}" ]]; then continue; fi
    case "$(declare -p "$name")" in "declare -"*x*) ;; *) declare -p "$name" ;; esac
  done
}}
__docs_keep > "$DOCS_HARNESS_DIR/vars"
env -0 > "$DOCS_HARNESS_DIR/env"
pwd > "$DOCS_HARNESS_DIR/cwd"
"""


@dataclass(frozen=True)
class Ran:
    """What one block did."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Session:
    """A terminal on one page: its directory, its environment and the live server (its
    HTTP and its gRPC address)."""

    cwd: Path
    address: str
    grpc_address: str
    env: dict[str, str] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = self.cwd  # the checkout: its .venv runs the python blocks

    def localise(self, source: str) -> str:
        """``source`` with the docs' server addresses (HTTP and gRPC) replaced by the live
        ones."""
        for documented in DOCS_ADDRESSES:
            source = source.replace(documented, self.address)
        for documented in DOCS_GRPC_ADDRESSES:
            source = source.replace(documented, self.grpc_address)
        return source

    def run(self, language: str, source: str, scratch: Path) -> Ran:
        """Run one block; a shell block's exported variables and directory carry over."""
        source = self.localise(source)
        script = scratch / "block"
        if language == "python":
            script.write_text(source)
            argv = [str(self.root / ".venv" / "bin" / "python"), str(script)]
        else:
            script.write_text(_SHELL_BLOCK.format(source=source))
            argv = ["bash", "-e", "-o", "pipefail", str(script)]
            self.env[_DUMPS] = str(scratch)
        # Its own process group: what the block leaves running (`... &`) is stopped with
        # the page (close), and a block past its time is stopped whole.
        block = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.groups.append(block.pid)
        try:
            stdout, stderr = block.communicate(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop_group(block.pid, signal.SIGKILL)
            stdout, stderr = block.communicate()
            return Ran(-1, stdout, f"{stderr}\ntimed out after {BLOCK_TIMEOUT_S:.0f} s")
        if language != "python" and block.returncode == 0:
            self._carry_over(scratch)
        return Ran(block.returncode, stdout, stderr)

    def close(self) -> None:
        """Stop whatever the page's blocks left running."""
        for group in self.groups:
            _stop_group(group, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for group in self.groups:
            while _group_alive(group) and time.monotonic() < deadline:
                time.sleep(0.05)  # bounded wait for a process group to exit after SIGTERM
            _stop_group(group, signal.SIGKILL)

    def _carry_over(self, scratch: Path) -> None:
        pairs = (scratch / "env").read_text().split("\0")
        self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        self.cwd = Path((scratch / "cwd").read_text().strip())


def _stop_group(group: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


_NOT_COPIED = frozenset(
    {".git", ".venv", ".tensorgate", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)


def _tracked_files() -> list[str]:
    """The files git tracks; in a tree without git, every file but caches and venvs."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if not _NOT_COPIED.intersection(path.relative_to(ROOT).parts)
        ]
    return [name for name in listed.stdout.split("\0") if name]


def copy_checkout(target: Path) -> None:
    """The checkout's tracked files (as they are in the work tree) under ``target``, its
    virtual environment linked."""
    for name in _tracked_files():
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    (target / ".venv").symlink_to(ROOT / ".venv")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (the probes stay bound until all are picked)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"tensorgate serve exited: {log.read_text()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a child process's readiness, bounded by the deadline
    raise TimeoutError(f"tensorgate serve not ready in {START_TIMEOUT_S:.0f} s: {log.read_text()}")


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the server's gRPC port takes connections (a block's client does not wait)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tensorgate serve exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2.0).close()
        except OSError:
            time.sleep(0.1)  # polling a child process's port, bounded by the deadline
        else:
            return
    raise TimeoutError(f"gRPC not listening in {START_TIMEOUT_S:.0f} s: {log.read_text()}")


def _mint(cwd: Path, scopes: str) -> str:
    minted = subprocess.run(
        [str(cwd / ".venv" / "bin" / "tensorgate"), "token", "--sub", "docs", "--scope", scopes],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip()


def _user_environment() -> dict[str, str]:
    """The test process's environment without the settings a test run may have set."""
    return {key: value for key, value in os.environ.items() if not key.startswith("TENSORGATE_")}


@contextmanager
def page_session() -> Iterator[tuple[Session, Path]]:
    """A scratch checkout with ``tensorgate serve`` (default settings but the ports: HTTP
    and gRPC on free ones, never 8001, which another server may hold) running in it, and a
    session whose environment holds the tokens of tests/docs/README.md. Yields the session
    and a directory for the harness's own files."""
    with tempfile.TemporaryDirectory(prefix="tensorgate-docs-") as temporary:
        checkout, scratch = Path(temporary) / "checkout", Path(temporary) / "harness"
        checkout.mkdir()
        scratch.mkdir()
        copy_checkout(checkout)
        port, grpc_port = _free_ports(2)
        log = scratch / "server.log"
        env = _user_environment()
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [
                    str(checkout / ".venv" / "bin" / "tensorgate"),
                    "serve",
                    "--port",
                    str(port),
                    "--grpc-port",
                    str(grpc_port),
                ],
                cwd=checkout,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            _wait_ready(server, f"http://127.0.0.1:{port}/v2/health/ready", log)
            _wait_listening(server, grpc_port, log)
            session = Session(checkout, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", env)
            session.env.update({name: _mint(checkout, scopes) for name, scopes in TOKENS.items()})
            try:
                yield session, scratch
            finally:
                session.close()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
