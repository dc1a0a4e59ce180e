"""Choosing an upstream replica: fewest outstanding, circuits that open, half-open, close."""

from __future__ import annotations

from backends.replicas import Replica, ReplicaSet


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replica_set(*urls: str, clock: Clock) -> ReplicaSet[None]:
    return ReplicaSet(
        [Replica(url, None) for url in urls], failure_threshold=2, open_s=5.0, clock=clock
    )


def test_the_replica_with_fewest_outstanding_batches_is_chosen() -> None:
    replicas = replica_set("a", "b", "c", clock=Clock())
    a, b, c = replicas.replicas
    a.outstanding, b.outstanding, c.outstanding = 3, 1, 2
    assert replicas.choose(set()) is b
    assert replicas.choose({"b"}) is c
    assert replicas.choose({"a", "b", "c"}) is None


def test_idle_replicas_take_turns() -> None:
    replicas = replica_set("a", "b", "c", clock=Clock())
    assert [replicas.choose(set()).url for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]  # type: ignore[union-attr]


def test_a_circuit_opens_after_failures_in_a_row_and_half_opens_later() -> None:
    clock = Clock()
    replicas = replica_set("a", "b", clock=clock)
    a, b = replicas.replicas
    b.outstanding = 10  # a would be chosen while it takes work
    replicas.failed(a, "ConnectError")
    assert replicas.choose(set()) is a  # one failure: still closed
    replicas.failed(a, "ConnectError")
    assert replicas.choose(set()) is b  # open
    assert "a: open (ConnectError)" in replicas.describe()
    clock.now += 5.0
    assert replicas.choose(set()) is a  # half-open: one trial batch
    assert a.probing
    assert replicas.choose(set()) is b  # only one trial at a time
    replicas.succeeded(a)
    assert replicas.choose(set()) is a
    assert replicas.describe().startswith("a: closed")


def test_a_failed_trial_opens_the_circuit_again() -> None:
    clock = Clock()
    replicas = replica_set("a", clock=clock)
    (a,) = replicas.replicas
    replicas.failed(a, "x")
    replicas.failed(a, "x")
    clock.now += 5.0
    assert replicas.choose(set()) is a
    replicas.failed(a, "still down")
    assert replicas.choose(set()) is None
    clock.now += 5.0
    assert replicas.choose(set()) is a


def test_a_released_trial_may_be_tried_again() -> None:
    clock = Clock()
    replicas = replica_set("a", clock=clock)
    (a,) = replicas.replicas
    replicas.failed(a, "x")
    replicas.failed(a, "x")
    clock.now += 5.0
    assert replicas.choose(set()) is a
    replicas.released(a)  # the caller's deadline ended it: no verdict
    assert replicas.choose(set()) is a


def test_a_replica_that_is_not_ready_takes_nothing_until_it_is() -> None:
    replicas = replica_set("a", "b", clock=Clock())
    a, b = replicas.replicas
    replicas.health(a, ready=False, reason="ConnectError")
    assert replicas.choose(set()) is b
    assert "a: not ready (ConnectError)" in replicas.describe()
    replicas.health(a, ready=True)
    b.outstanding = 1
    assert replicas.choose(set()) is a
