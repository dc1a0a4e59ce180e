"""Fair reads: which connections are left unread, and when they are read again (pure logic)."""

from __future__ import annotations

import sys
from types import FrameType

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.serving.fair_reads import FairReads
from support.fair_connections import Connection, crowd


def flood_answered_beside_a_polite_caller() -> tuple[FairReads, list[Connection], list[Connection]]:
    """20 flood requests answered while a polite caller has 2 in progress: the fair
    reads, the flood's connections, and those of them held."""
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 20)
    crowd(reads, "polite", 2)
    for connection in flood:
        connection.answer()
    return reads, flood, [connection for connection in flood if connection.held]


def test_one_caller_alone_is_never_held_however_busy() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 100)
    for connection in flood:
        connection.answer()
        connection.begin()
    assert not any(connection.held for connection in flood)


def test_a_flood_is_held_at_its_share_and_a_polite_caller_never() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 50)
    polite = crowd(reads, "polite", 3)
    for connection in flood:
        connection.answer()
    held = [connection for connection in flood if connection.held]
    # Half of 8 for each caller, and the slot the polite caller leaves unused: the flood
    # keeps 5 requests in progress, the other 45 wait.
    assert reads.waiting == len(held) == 45
    for connection in polite:
        connection.answer()
        assert not connection.held
        connection.begin()
    # Slots the polite caller left free between its requests went to held flood
    # connections; its own requests are read whatever the flood holds.
    assert reads.in_progress <= 8 + 3


def test_held_connections_are_read_again_oldest_first_as_the_floods_requests_end() -> None:
    _reads, flood, held = flood_answered_beside_a_polite_caller()
    running = [connection for connection in flood if not connection.held]
    running[0].begin()  # a running one sends its next request...
    running[0].answer()  # ...and its end makes room: the oldest held one is read again
    assert not held[0].held
    assert all(connection.held for connection in held[1:])


def test_a_connection_whose_caller_is_not_counted_yet_is_judged_not_refused() -> None:
    # A connection's first request is never counted (its caller is learnt during it);
    # once it ends, the caller may be active nowhere: holds_back must still decide.
    reads = FairReads(capacity=4)
    crowd(reads, "flood", 4)
    crowd(reads, "other", 2)
    newcomer = Connection(reads, "newcomer")
    assert reads.holds_back(newcomer.share) is False  # no request in progress: under share


def test_weights_divide_the_share() -> None:
    reads = FairReads(capacity=12)
    heavy = crowd(reads, "heavy", 30, weight=2.0)
    light = crowd(reads, "light", 30)
    for connection in [*heavy, *light]:
        connection.answer()
    in_progress = {
        flow: sum(1 for c in group if not c.held)
        for flow, group in (("heavy", heavy), ("light", light))
    }
    # 12 shared 2:1 (the heavy caller may also take a slot left free).
    assert in_progress["light"] == 4
    assert in_progress["heavy"] in (8, 9)


def test_once_the_other_caller_is_gone_for_a_while_the_flood_is_read_again() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 30)
    polite = crowd(reads, "polite", 1)
    for connection in flood:
        connection.answer()
    polite[0].answer()  # the polite caller stops
    for _ in range(200):  # the flood's running requests come and go
        for connection in [c for c in flood if not c.held and not c.busy]:
            connection.begin()
        for connection in [c for c in flood if c.busy]:
            connection.answer()
    assert reads.active == 1
    assert not any(connection.held for connection in flood)


def test_a_held_connection_that_closes_or_a_shutdown_forgets_it() -> None:
    reads, _flood, held = flood_answered_beside_a_polite_caller()
    assert reads.release(held[0].share) is not None
    assert reads.release(held[0].share) is None
    assert len(reads.release_all()) == len(held) - 1
    assert reads.waiting == 0


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=9)),
        min_size=1,
        max_size=300,
    ),
    capacity=st.integers(min_value=2, max_value=12),
)
def test_counts_stay_true_and_nothing_stays_held_once_the_load_stops(
    steps: list[tuple[str, int]], capacity: int
) -> None:
    reads = FairReads(capacity=capacity)
    connections = {(flow, n): Connection(reads, flow) for flow in "abc" for n in range(10)}
    for flow, number in steps:
        connection = connections[(flow, number)]
        if connection.held:
            continue
        if connection.busy:
            connection.answer()
        else:
            connection.begin()
        busy = sum(1 for c in connections.values() if c.busy)
        assert reads.in_progress >= busy  # slots kept for resumed connections count too
    for connection in connections.values():
        if connection.busy:
            connection.answer()
    # Every connection resumed still holds a kept slot until its next request: send it.
    while any(c.held for c in connections.values()) or reads.in_progress:
        for connection in connections.values():
            if not connection.held and connection.share.counted is not None:
                connection.begin()
                connection.busy = False
                reads.end(connection.share)
        if all(c.held for c in connections.values() if c.share.counted is None) and not any(
            not c.held and c.share.counted is not None for c in connections.values()
        ):
            break
    assert reads.in_progress == 0
    assert not any(connection.held for connection in connections.values())


def test_a_lone_caller_costs_a_few_calls_per_answer() -> None:
    # Issue 20's cost target for one caller: what fair reads add to each answer of the
    # serving protocol (its end, the hold check and the next begin), counted exactly.
    reads = FairReads(capacity=8)
    connections = crowd(reads, "solo", 64)
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        del frame, arg
        if event in ("call", "c_call"):
            calls += 1

    answers = 640
    sys.setprofile(count)
    try:
        for index in range(answers):
            share = connections[index % 64].share
            reads.end(share)
            assert not reads.holds_back(share)
            reads.begin(share)
    finally:
        sys.setprofile(None)
    assert calls / answers <= 8
