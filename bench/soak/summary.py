"""The soak's printed report: requests sent and answered, lost, undocumented 5xx, the
faults and what they cost, resources, and the targets met or not."""

from __future__ import annotations

from soak.verdict import Sample, SoakResult, attribute, targets


def _sample(label: str, sample: Sample | None) -> str:
    if sample is None:
        return f"  {label}: not measured"
    return f"  {label}: RSS {sample.rss_bytes / 2**20:.1f} MiB, {sample.open_files} open files"


def _faults(result: SoakResult) -> list[str]:
    losses = attribute(result.tally.lost, result.kills)
    lines = [f"worker kills: {len(result.kills)}"]
    for n, kill in enumerate(result.kills):
        lost = losses.by_kill.get(kill.pid, [])
        in_flight = sum(r.sent < kill.killed for r in lost)
        closed = (
            f", the last failing {(max(r.failed for r in lost) - kill.killed) * 1000:.0f} ms "
            "after the SIGKILL"
            if lost
            else ""
        )
        back = (
            f", workers back after {result.replaced_after_s[n]:.1f} s"
            if n < len(result.replaced_after_s)
            else ""
        )
        lines.append(
            f"  t={kill.killed:.0f}s pid {kill.pid} (stopped "
            f"{(kill.killed - kill.stopped) * 1000:.0f} ms before SIGKILL): held "
            f"{len(kill.ports)} client connections; lost on them {len(lost)} "
            f"({in_flight} sent before the SIGKILL, {len(lost) - in_flight} after it, "
            f"before its sockets closed{closed}){back}"
        )
    if result.upstream_down is not None:
        back = f"{result.upstream_back:.0f}s" if result.upstream_back is not None else "never"
        failures = result.tally.remote_failures
        last = f", the last at t={max(failures):.1f}s" if failures else ""
        lines.append(
            f"remote upstream: killed at t={result.upstream_down:.0f}s, back at {back}; "
            f"remote-model answers other than 200: {len(failures)}{last}"
        )
    lines.append(f"repository changes: {len(result.changes)}")
    lines += [
        f"  t={c.at:.0f}s {c.what}: {c.status}" + (f" {c.message}" if c.message else "")
        for c in result.changes
    ]
    return lines


def report(result: SoakResult) -> str:
    """The whole report, one line per figure."""
    tally = result.tally
    answered = sum(tally.answered.values())
    losses = attribute(tally.lost, result.kills)
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.by_status().items()))
    lines = [
        f"soak: {result.seconds:.0f} s, tensorgate serve --workers 2, {result.connections} "
        f"connections from {result.callers} token subjects",
        f"requests sent: {tally.sent} ({tally.not_connected} not sent: no connection)",
        f"answered: {answered} ({statuses})",
        "  by kind: "
        + "; ".join(
            f"{kind} {sum(n for (k, _), n in tally.answered.items() if k == kind)}"
            for kind in sorted({k for k, _ in tally.answered})
        ),
        f"lost (no answer): {len(tally.lost)}: {sum(map(len, losses.by_kill.values()))} on "
        f"killed workers' connections, {len(losses.elsewhere)} elsewhere",
        *(
            f"  elsewhere: t={r.sent:.2f}-{r.failed:.2f}s {r.kind} port {r.port}: {r.reason}"
            for r in losses.elsewhere[:20]
        ),
        f"5xx other than the documented ones: {tally.odd}",
        *(f"  t={o.at:.1f}s {o.kind} {o.status}: {o.message}" for o in tally.odd_samples),
        *_faults(result),
        "server processes (supervisor and workers):",
        _sample("idle, before the clients", result.idle_before),
        _sample("idle, after the clients", result.idle_after),
        f"  exit status after SIGINT: {result.exit_status}",
        "targets:",
        *(
            f"  [{'met' if ok else 'NOT MET'}] {name}: {measured}"
            for name, measured, ok in targets(result)
        ),
    ]
    return "\n".join(lines)
