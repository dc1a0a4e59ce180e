"""Tallied observations reach the Prometheus collectors as direct observations would."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from gateway.tally import CounterTally, GaugeTally, HistogramTally, SummaryTally, TallyBook

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_the_private_names_the_tally_relies_on_are_still_there() -> None:
    """Fails loudly when prometheus_client moves the internals ``gateway.tally`` uses."""
    registry = CollectorRegistry()
    counter = Counter("c", "c", ["l"], registry=registry).labels("a")
    summary = Summary("s", "s", ["l"], registry=registry).labels("a")
    histogram = Histogram("h", "h", ["l"], buckets=BUCKETS, registry=registry).labels("a")
    for value in (counter._value, summary._count, summary._sum, histogram._sum):
        assert callable(value.inc)
    assert list(histogram._upper_bounds) == [*BUCKETS, float("inf")]
    assert len(histogram._buckets) == len(BUCKETS) + 1
    assert all(callable(bucket.inc) for bucket in histogram._buckets)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=40))
def test_flushed_tallies_equal_direct_observations(values: list[float]) -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    book = TallyBook()
    tallies = []
    for registry in (direct, tallied):
        counter = Counter("requests", "r", ["model"], registry=registry).labels("m")
        summary = Summary("size", "s", ["model"], registry=registry).labels("m")
        histogram = Histogram("seconds", "h", ["model"], buckets=BUCKETS, registry=registry)
        tallies.append((counter, summary, histogram.labels("m")))
    counter, summary, histogram = tallies[0]
    for value in values:
        counter.inc()
        summary.observe(value)
        histogram.observe(value)
    counts = CounterTally(tallies[1][0], book)
    sizes = SummaryTally(tallies[1][1], book)
    seconds = HistogramTally(tallies[1][2], book)
    for value in values:
        counts.inc()
        sizes.observe(value)
        seconds.observe(value)
    book.flush()
    got, want = samples(tallied), samples(direct)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_counts_reach_the_collector_at_the_end_of_the_loop_turn() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("seconds", "h", buckets=BUCKETS, registry=registry)
    book = TallyBook()
    tally = HistogramTally(histogram, book)

    async def scenario() -> tuple[float | None, float | None]:
        tally.observe(0.05)
        tally.observe(0.5)
        before = registry.get_sample_value("seconds_count")
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(done.set_result, None)  # queued after the flush
        await done
        return before, registry.get_sample_value("seconds_count")

    before, after = asyncio.run(scenario())
    assert (before, after) == (0.0, 2.0)
    assert registry.get_sample_value("seconds_bucket", {"le": "0.1"}) == 1.0
    assert registry.get_sample_value("seconds_bucket", {"le": "1.0"}) == 2.0


def test_direct_books_and_callers_without_a_loop_observe_at_once() -> None:
    registry = CollectorRegistry()
    counter = Counter("requests", "r", registry=registry)
    CounterTally(counter, TallyBook(direct=True)).inc()
    assert registry.get_sample_value("requests_total") == 1.0
    CounterTally(counter, TallyBook()).inc()  # no running loop: nothing to wait for
    assert registry.get_sample_value("requests_total") == 2.0


def test_a_gauge_keeps_the_last_value_set_in_a_loop_turn() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("depth", "d", registry=registry)
    tally = GaugeTally(gauge, TallyBook())

    async def scenario() -> float | None:
        for depth in (3, 7, 2):
            tally.set(depth)
        assert registry.get_sample_value("depth") == 0.0
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(done.set_result, None)
        await done
        return registry.get_sample_value("depth")

    assert asyncio.run(scenario()) == 2.0
