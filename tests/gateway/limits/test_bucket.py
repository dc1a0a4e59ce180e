"""The token bucket on a simulated clock: its rate and burst hold to within 5% over 10 s."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.limits.bucket import TokenBucket

SIMULATED_S = 10.0
rates = st.floats(min_value=2.0, max_value=400.0, allow_nan=False)
bursts = st.integers(min_value=1, max_value=400)


def flood(rate: float, burst: int, until_s: float = SIMULATED_S) -> list[float]:
    """Times at which requests of a flood were let through: requests until one is refused,
    then again exactly when the refusal said a token would be there."""
    bucket = TokenBucket(burst, 0.0)
    now, passed = 0.0, []
    while now <= until_s:
        wait = bucket.take(now, rate, burst)
        if wait == 0.0:
            passed.append(now)
        else:
            now += wait
    return passed


@settings(max_examples=80, deadline=None)
@given(rate=rates, burst=bursts)
@example(rate=2.0, burst=1)
@example(rate=400.0, burst=400)
def test_a_flood_gets_the_burst_and_then_the_rate_within_5_percent(rate: float, burst: int) -> None:
    passed = flood(rate, burst)
    allowed = burst + rate * SIMULATED_S
    assert len(passed) <= allowed + 1e-9
    assert len(passed) >= 0.95 * allowed
    # The burst goes at once, then one request per 1/rate.
    assert passed[:burst] == [0.0] * burst
    later = passed[burst:]
    if len(later) > 1:
        mean_gap = (later[-1] - later[0]) / (len(later) - 1)
        assert mean_gap == pytest.approx(1 / rate, rel=0.05)


def admitted_within_bounds(times: list[float], rate: float, burst: float) -> bool:
    """No window [t_i, t_j] of the admitted times holds more than burst + rate * (t_j - t_i):
    j - i + 1 <= burst + rate * (t_j - t_i) for all i <= j, checked in one pass with the
    running maximum of (1 - i + rate * t_i)."""
    best = -math.inf
    for j, t in enumerate(times):
        best = max(best, 1 - j + rate * t)
        if j - rate * t + best > burst + 1e-6:
            return False
    return True


@settings(max_examples=120, deadline=None)
@given(
    rate=rates,
    burst=bursts,
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=2000),
)
def test_no_window_ever_passes_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(burst, 0.0)
    now, passed = 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now, rate, burst) == 0.0:
            passed.append(now)
    assert admitted_within_bounds(passed, rate, burst)


@settings(max_examples=80, deadline=None)
@given(rate=rates, burst=bursts, asked_at=st.floats(min_value=0.0, max_value=SIMULATED_S))
def test_the_wait_it_names_is_when_the_next_token_is_there(
    rate: float, burst: int, asked_at: float
) -> None:
    bucket = TokenBucket(burst, 0.0)
    for _ in range(burst):
        assert bucket.take(0.0, rate, burst) == 0.0
    wait = bucket.take(0.0, rate, burst)
    assert wait == pytest.approx(1 / rate)
    assert bucket.take(wait * 0.99, rate, burst) > 0.0  # not a moment before
    assert bucket.take(wait, rate, burst) == 0.0
    # Idle long enough, it is full again, never fuller.
    later = wait + asked_at + burst / rate
    assert sum(bucket.take(later, rate, burst) == 0.0 for _ in range(burst + 1)) == burst


def test_a_clock_read_out_of_order_adds_no_tokens() -> None:
    bucket = TokenBucket(1, 10.0)
    assert bucket.take(10.0, 1.0, 1) == 0.0
    assert bucket.take(9.0, 1.0, 1) == pytest.approx(1.0)  # an earlier reading: no refill
    assert bucket.take(10.5, 1.0, 1) == pytest.approx(0.5)


def test_new_limits_apply_to_a_bucket_at_once_capped_at_the_new_burst() -> None:
    bucket = TokenBucket(10, 0.0)
    assert bucket.take(0.0, 1.0, 2) == 0.0  # the burst is now 2: one left after this
    assert bucket.take(0.0, 1.0, 2) == 0.0
    assert bucket.take(0.0, 1.0, 2) == pytest.approx(1.0)


def test_a_token_given_back_is_there_again_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(1, 0.0)
    assert bucket.take(0.0, 1.0, 1) == 0.0
    bucket.give_back(1)
    bucket.give_back(1)
    assert bucket.take(0.0, 1.0, 1) == 0.0
    assert bucket.take(0.0, 1.0, 1) > 0.0
    assert bucket.full_at(1.0, 1) == pytest.approx(1.0)
