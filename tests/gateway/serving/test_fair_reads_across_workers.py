"""Fair reads with ``--workers N``: decisions by the server's load, the other workers' as
their views say (injected here, as the exchange hands them in)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cluster.shares import View
from gateway.serving.fair_reads import FairReads
from support.fair_connections import Connection, crowd

POLITE_ELSEWHERE = View({"polite": 4, "flood": 6}, {"polite": 1.0, "flood": 1.0})


def test_a_worker_serving_only_the_flood_holds_it_when_another_serves_a_polite_caller() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 30)
    reads.see([POLITE_ELSEWHERE])
    for connection in flood:
        connection.answer()
    # The server's 8 requests in progress (all workers together) are shared by two
    # callers, 4 each; the flood has 6 in the other worker, so here all its connections
    # wait, and this worker leaves its CPU to the other.
    assert all(connection.held for connection in flood)
    assert reads.active == 2


def test_alone_in_this_worker_without_views_the_flood_is_never_held() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 30)
    for connection in flood:
        connection.answer()
    assert not any(connection.held for connection in flood)


def test_a_server_under_its_capacity_holds_nobody() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 5)
    reads.see([View({"polite": 2}, {"polite": 1.0}), View()])  # 7 of 8
    for connection in flood:
        connection.answer()
    assert not any(connection.held for connection in flood)


def test_held_connections_are_read_again_when_the_other_worker_frees_its_share() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 30)
    reads.see([POLITE_ELSEWHERE])
    for connection in flood:
        connection.answer()
    held = [connection for connection in flood if connection.held]
    reads.see([View({"polite": 4}, {"polite": 1.0, "flood": 1.0})])
    # The other worker's flood requests ended: the flood's 4 fit here, oldest first.
    assert [c.held for c in held[:5]] == [False, False, False, False, True]


def test_a_worker_that_drops_out_frees_what_it_held_back() -> None:
    reads = FairReads(capacity=8)
    flood = crowd(reads, "flood", 30)
    reads.see([POLITE_ELSEWHERE])
    for connection in flood:
        connection.answer()
    reads.see([])  # the other worker died: this one is the server again, the flood alone
    assert not any(connection.held for connection in flood)
    assert reads.active == 1


def test_weights_of_callers_active_elsewhere_divide_the_share() -> None:
    reads = FairReads(capacity=8)
    light = crowd(reads, "light", 30)
    reads.see([View({"heavy": 12}, {"heavy": 3.0})])
    for connection in light:
        connection.answer()
    # 8 shared 3:1: the light caller keeps 2, whatever this worker alone could take.
    assert sum(1 for c in light if not c.held) == 2


def test_a_first_answer_here_of_a_caller_busy_elsewhere_counts_its_share_there() -> None:
    reads = FairReads(capacity=8)
    crowd(reads, "flood", 10)
    reads.see([View({"polite": 5}, {"polite": 1.0})])
    # A new connection's first request is not counted (its caller was not known yet):
    # after it, the caller is judged by its requests in the other worker.
    newcomer = Connection(reads, "polite")
    assert reads.holds_back(newcomer.share)
    assert not reads.holds_back(Connection(reads, "third").share)  # nothing in progress


def test_the_view_sent_is_what_this_worker_holds() -> None:
    reads = FairReads(capacity=8)
    crowd(reads, "flood", 3, weight=2.0)
    crowd(reads, "polite", 1)
    assert reads.view() == View({"flood": 3, "polite": 1}, {"flood": 2.0, "polite": 1.0})


flows = st.sampled_from(["a", "b", "c", "d"])
views = st.builds(
    View,
    st.dictionaries(flows, st.integers(min_value=1, max_value=20), max_size=4),
    st.dictionaries(flows, st.sampled_from([0.5, 1.0, 2.0]), max_size=4),
)


@settings(max_examples=200, deadline=None)
@given(
    local=st.dictionaries(flows, st.integers(min_value=1, max_value=20), min_size=1, max_size=4),
    others=st.lists(views, max_size=3),
    capacity=st.integers(min_value=2, max_value=16),
)
def test_each_decision_is_the_servers_share_of_the_servers_load(
    local: dict[str, int], others: list[View], capacity: int
) -> None:
    reads = FairReads(capacity=capacity)
    weights = {"a": 1.0, "b": 2.0, "c": 1.0, "d": 0.5}
    connections = {flow: crowd(reads, flow, count, weights[flow]) for flow, count in local.items()}
    reads.see(others)
    # The reference: the server's callers, their weights and their requests in progress.
    active = {flow: weights[flow] for flow in local}
    in_progress = dict(local)
    for view in others:
        active.update({flow: w for flow, w in view.weights.items() if flow not in local})
        for flow, count in view.in_progress.items():
            in_progress[flow] = in_progress.get(flow, 0) + count
    contended = sum(in_progress.values()) >= capacity and len(active) >= 2
    for flow, group in connections.items():
        share = max(1.0, capacity * active[flow] / sum(active.values()))
        expected = contended and in_progress[flow] >= share
        assert reads.holds_back(group[0].share) is expected


class _Worker:
    """One worker of a simulated ``--workers 2`` server: its fair reads and connections,
    closed-loop clients (a connection read again sends its next request at once)."""

    def __init__(self, capacity: int) -> None:
        self.reads = FairReads(capacity=capacity)
        self.connections: list[Connection] = []
        self.served: dict[Connection, int] = {}

    def open(self, flow: str, count: int) -> list[Connection]:
        group = crowd(self.reads, flow, count)
        self.connections += group
        for connection in group:
            connection.busy = True
            self.served[connection] = 0
        return group

    def answer_all(self) -> None:
        """Every request in progress is answered; each connection not held sends again."""
        for connection in [c for c in self.connections if c.busy]:
            self.served[connection] += 1
            connection.answer()
            if not connection.held:
                connection.begin()  # its next request is read at once
        for connection in self.connections:
            if not connection.busy and not connection.held:
                connection.begin()  # resumed, with a slot kept for its request


def _exchange(one: _Worker, other: _Worker) -> None:
    one.reads.see([other.reads.view()])
    other.reads.see([one.reads.view()])


def test_a_callers_connections_held_in_one_worker_are_served_while_another_serves_it() -> None:
    # The scene of make bench's --workers 2 rows: the flood's connections in both
    # workers, the polite caller's in one. The worker whose flood request ends must not
    # take every freed place: the other worker's held flood connections would then wait
    # for a place that is never free when its view comes.
    busy, quiet = _Worker(capacity=8), _Worker(capacity=8)
    polite = busy.open("polite", 4)
    flood_busy = busy.open("flood", 30)
    flood_quiet = quiet.open("flood", 30)
    for _ in range(200):
        busy.answer_all()
        _exchange(busy, quiet)
        quiet.answer_all()
        _exchange(busy, quiet)
    served_quiet = sum(quiet.served[c] for c in flood_quiet)
    served_busy = sum(busy.served[c] for c in flood_busy)
    assert all(quiet.served[c] > 0 for c in flood_quiet)
    # The flood's share is split by what each worker has of it: neither takes it all.
    assert 0.5 < served_quiet / served_busy < 2.0
    # And the flood never holds more than its share of the server for long: the polite
    # caller keeps its 4 in progress.
    assert all(busy.served[c] >= 190 for c in polite)


def test_the_view_sent_counts_the_connections_held() -> None:
    reads = FairReads(capacity=4)
    flood = crowd(reads, "flood", 10)
    crowd(reads, "polite", 2)
    for connection in flood:
        connection.answer()
    assert reads.view().waiting == {"flood": sum(1 for c in flood if c.held)}
    assert reads.view().waiting["flood"] > 0
