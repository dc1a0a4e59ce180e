"""The soak's faults: when each happens, and how a worker is killed so that the client
connections it held are known exactly."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHANGE_EVERY_S = 30.0
KILL_EVERY_S = 120.0
FIRST_KILL_S = 45.0
"""Kills fall between repository changes, never on one."""
OUTAGE_S = 10.0
"""How long the remote upstream stays down."""
LISTEN = "0A"
"""The state of a listening socket in /proc/net/tcp (the workers share the listener)."""


@dataclass(frozen=True)
class Plan:
    """When each fault happens, in seconds from the start of the run."""

    changes: list[float]
    kills: list[float]
    outage: float


def plan(seconds: float) -> Plan:
    """Repository changes every 30 s; a worker killed every 2 minutes from 45 s; the
    upstream down once, for 10 s, halfway between two kills when the run is long enough
    (so that no worker restarts during the outage, and the baseline of the resource
    samples, 10-20% into the run, is before it), else a quarter of the way in."""
    changes = [CHANGE_EVERY_S * n for n in range(1, int(seconds // CHANGE_EVERY_S) + 1)]
    changes = [t for t in changes if t < seconds]
    kills = [FIRST_KILL_S + KILL_EVERY_S * n for n in range(int(seconds // KILL_EVERY_S) + 1)]
    kills = [t for t in kills if t < seconds]
    halfway = [t + KILL_EVERY_S / 2 for t in kills]
    fitting = [t for t in halfway if t >= 0.25 * seconds and t + OUTAGE_S <= 0.8 * seconds]
    return Plan(changes, kills, fitting[0] if fitting else 0.25 * seconds)


@dataclass(frozen=True)
class Kill:
    """A worker killed: when it was stopped and killed, and the client ports of the
    connections it held then."""

    pid: int
    stopped: float
    killed: float
    ports: frozenset[int]


def kill_worker(pid: int, server_port: int, clock: Callable[[], float]) -> Kill:
    """SIGSTOP ``pid`` so that it accepts and answers nothing more, read which client
    connections it holds, then SIGKILL it; ``clock`` reads the run's time."""
    stopped = clock()
    os.kill(pid, signal.SIGSTOP)
    try:
        ports = client_ports(pid, server_port)
    finally:
        os.kill(pid, signal.SIGKILL)
    return Kill(pid, stopped, clock(), ports)


def client_ports(pid: int, server_port: int) -> frozenset[int]:
    """The remote ports of the TCP connections to ``server_port`` that ``pid`` holds."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if (
                    inode in inodes
                    and state != LISTEN
                    and int(local.rsplit(":", 1)[1], 16) == server_port
                ):
                    ports.add(int(remote.rsplit(":", 1)[1], 16))
    return frozenset(ports)
