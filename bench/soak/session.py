"""One soak run: the upstream and the gateway started, the clients sending, the faults
played on schedule, the gateway's processes sampled; everything stopped at the end."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path

from servers import Server, free_port, start, stop, tensorgate
from soak.calls import LogWatch, call, ready
from soak.clients import Clients
from soak.faults import OUTAGE_S, kill_worker, plan
from soak.kinds import kinds
from soak.outcomes import Tally
from soak.repository import (
    CHANGED_MODEL,
    UPSTREAM_TOKEN_VARIABLE,
    Changes,
    gateway_repository,
    upstream_repository,
)
from soak.verdict import Change, Sample, SoakResult
from tokens import mint

WORKERS = 2
SAMPLE_EVERY_S = 2.0
STARTED = b"Application startup complete"
REPLACE_TIMEOUT_S = 90.0
SCOPES = "models:read models:infer"


def sample(server: Server, at: float) -> Sample:
    """RSS and open files of the server's processes now."""
    return Sample(at, server.rss_bytes(), server.open_files())


def say(at: float, line: str) -> None:
    """A progress line on stderr."""
    sys.stderr.write(f"[soak t={at:6.1f}s] {line}\n")
    sys.stderr.flush()


class Session:
    """The servers and the schedule of one run (see ``run``)."""

    def __init__(self, work: Path, seconds: float, result: SoakResult) -> None:
        self.work, self.seconds, self.result = work, seconds, result
        self.env = {"TENSORGATE_AUTH__SECRET": secrets.token_urlsafe(48)}
        self.upstream_port = free_port()
        self.upstream_repo = upstream_repository(work / "upstream-models")
        self.gateway_repo = gateway_repository(
            work / "models", f"http://127.0.0.1:{self.upstream_port}"
        )
        self.changes = Changes(self.gateway_repo / CHANGED_MODEL)
        self.admin = mint(self.env, "soak-ops", f"{SCOPES} admin")
        self.started = 0.0
        self.upstream: Server | None = None
        self.gateway: Server | None = None
        self.log = LogWatch(work / "gateway.log", STARTED)

    def clock(self) -> float:
        """Seconds since the clients started."""
        return time.monotonic() - self.started

    async def start_upstream(self) -> None:
        """The remote model's upstream: one process, on its fixed port."""
        log = self.work / "upstream.log"
        self.upstream = start(tensorgate(self.upstream_repo, 1), log, self.env, self.upstream_port)
        await ready(self.upstream)

    async def start_gateway(self) -> Server:
        """``tensorgate serve --workers 2`` with the upstream's token; both workers up."""
        token = mint(self.env, "soak-gateway", SCOPES)
        env = {**self.env, UPSTREAM_TOKEN_VARIABLE: token}
        self.gateway = start(tensorgate(self.gateway_repo, WORKERS), self.work / "gateway.log", env)
        await ready(self.gateway)
        await self._started(WORKERS)
        return self.gateway

    async def _started(self, count: int) -> None:
        """Wait until ``count`` workers in all have said they started."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLACE_TIMEOUT_S
        while self.log.count() < count:
            if loop.time() > deadline:
                raise RuntimeError(f"fewer than {count} worker starts in {self.work}/gateway.log")
            await asyncio.sleep(0.2)  # watching a child's log from outside

    async def sample_until(self, end: float) -> None:
        """A resource sample every ``SAMPLE_EVERY_S`` until ``end`` (run time)."""
        assert self.gateway is not None
        while (now := self.clock()) < end:
            self.result.samples.append(sample(self.gateway, now))
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def faults(self) -> None:
        """Play the plan: repository changes, worker kills, the upstream's outage."""
        schedule = plan(self.seconds)
        events = [(t, self.change) for t in schedule.changes]
        events += [(t, self.kill) for t in schedule.kills]
        events += [(schedule.outage, self.outage_begins)]
        events += [(schedule.outage + OUTAGE_S, self.outage_ends)]
        for at, action in sorted(events, key=lambda event: event[0]):
            if (wait := at - self.clock()) > 0:
                await asyncio.sleep(wait)
            await action()

    async def change(self) -> None:
        """The next repository change, then the load call that applies it."""
        assert self.gateway is not None
        at = self.clock()
        what = self.changes.next()
        path = f"/v2/repository/models/{CHANGED_MODEL}/load"
        answer = await call(self.gateway.port, "POST", path, self.admin)
        message = "" if answer.status == 200 else answer.body[:300].decode("utf-8", "replace")
        if answer.status == 200:
            self.changes.retire()
        self.result.changes.append(Change(at, what, answer.status, message))
        say(self.clock(), f"{what}: load answered {answer.status} {message}")

    async def kill(self) -> None:
        """SIGKILL the oldest worker; wait for its replacement to start."""
        assert self.gateway is not None
        workers = self.gateway.worker_pids()
        if not workers:
            say(self.clock(), "no worker to kill")
            return
        before = self.log.count()
        # In a thread: the clients go on sending while the worker is stopped and dies,
        # as independent clients would (a blocked loop sends every overdue request at once,
        # right after the SIGKILL, into sockets the dying worker still holds).
        kill = await asyncio.to_thread(kill_worker, min(workers), self.gateway.port, self.clock)
        self.result.kills.append(kill)
        say(kill.killed, f"killed worker {kill.pid} ({len(kill.ports)} client connections)")
        await self._started(before + 1)
        self.result.replaced_after_s.append(self.clock() - kill.killed)
        say(self.clock(), "its replacement has started")

    async def outage_begins(self) -> None:
        """SIGKILL the remote upstream."""
        assert self.upstream is not None
        self.upstream.process.kill()
        self.upstream.process.wait()
        self.result.upstream_down = self.clock()
        say(self.clock(), "remote upstream killed")

    async def outage_ends(self) -> None:
        """Start the upstream again on its port."""
        await self.start_upstream()
        self.result.upstream_back = self.clock()
        say(self.clock(), "remote upstream back")

    def write_samples(self) -> None:
        """The resource samples as CSV in the scratch directory (kept with ``--keep``)."""
        rows = [f"{s.at:.1f},{s.rss_bytes},{s.open_files}" for s in self.result.samples]
        (self.work / "samples.csv").write_text("\n".join(["at_s,rss_bytes,open_files", *rows]))

    def stop_all(self) -> None:
        """Stop both servers (graceful, bounded); record the gateway's exit status."""
        for server in (self.gateway, self.upstream):
            if server is not None:
                stop(server)
        if self.gateway is not None:
            self.result.exit_status = self.gateway.process.returncode


async def run(work: Path, seconds: float, rate: float, callers: int, per_caller: int) -> SoakResult:
    """Start the servers, drive the clients for ``seconds`` while the faults play, stop
    everything; what was recorded comes back."""
    result = SoakResult(seconds, callers * per_caller, callers, Tally())
    session = Session(work, seconds, result)
    tokens = [mint(session.env, f"soak-{n}", SCOPES) for n in range(callers)]
    try:
        await session.start_upstream()
        gateway = await session.start_gateway()
        result.idle_before = sample(gateway, 0.0)
        clients = Clients(gateway.port, kinds(), tokens, per_caller, rate, result.tally)
        session.started = time.monotonic()
        say(0.0, f"{clients.connections} connections at {rate:.0f} req/s for {seconds:.0f} s")
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            clients.run(loop.time(), seconds),
            session.faults(),
            session.sample_until(seconds),
        )
        await asyncio.sleep(SAMPLE_EVERY_S)  # let the last connections close
        result.idle_after = sample(gateway, session.clock())
    finally:
        session.stop_all()
        session.write_samples()
    return result
