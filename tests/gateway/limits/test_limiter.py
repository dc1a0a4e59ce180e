"""The limiter on an injected clock: keys per subject, claim and scope, shares per process,
concurrency, several rules at once, model rules changed while serving."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.principal import Principal
from gateway.errors import RateLimited
from gateway.limits.limiter import Limiter
from gateway.settings import LimitRule


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Refusals:
    """A LimitObserver keeping what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def limited(self, rule: str, model: str, kind: str) -> None:
        self.seen.append((rule, model, kind))


def caller(subject: str = "alice", scopes: tuple[str, ...] = (), **claims: Any) -> Principal:
    return Principal(subject=subject, scopes=frozenset(scopes), claims=claims)


def rule(**fields: Any) -> LimitRule:
    return LimitRule.model_validate({"name": "r", **fields})


async def passes(limiter: Limiter, who: Principal, model: str = "mlp") -> bool:
    try:
        await limiter.enter(who, model)
    except RateLimited:
        return False
    return True


async def count_passing(limiter: Limiter, who: Principal, asked: int, model: str = "mlp") -> int:
    return sum([await passes(limiter, who, model) for _ in range(asked)])


async def test_one_bucket_per_subject() -> None:
    clock = Clock()
    limiter = Limiter([rule(rate_per_s=1, burst=2)], clock=clock)
    assert limiter.active
    assert await count_passing(limiter, caller("alice"), 5) == 2
    assert await count_passing(limiter, caller("bob"), 5) == 2
    clock.now += 1.0
    assert await count_passing(limiter, caller("alice"), 5) == 1


async def test_the_refusal_names_the_rule_its_policy_and_when_to_retry() -> None:
    clock, refusals = Clock(), Refusals()
    limiter = Limiter([rule(name="per-subject", rate_per_s=10, burst=20)], clock=clock,
                      observer=refusals, knows=lambda name: name == "mlp")  # fmt: skip
    for _ in range(20):
        await limiter.enter(caller(), "mlp")
    with pytest.raises(RateLimited) as refused:
        await limiter.enter(caller(), "mlp")
    error = refused.value
    assert error.rule == "per-subject"
    assert (error.quota, error.window_s, error.unit) == (20, 2, "requests")
    assert error.retry_after_s == pytest.approx(0.1)
    assert error.message == (
        "rate limit 'per-subject' exceeded: 10 requests per second, burst 20, per subject; "
        "retry in 0.100 s"
    )
    with pytest.raises(RateLimited):
        await limiter.enter(caller(), "made-up")
    assert refusals.seen == [
        ("per-subject", "mlp", "rate"),
        ("per-subject", "(unknown)", "rate"),  # a name a client made up is not a label
    ]


async def test_a_claim_keys_one_bucket_per_value_and_a_token_without_it_is_not_limited() -> None:
    limiter = Limiter([rule(key="claim:tenant", rate_per_s=1, burst=3)], clock=Clock())
    # Two subjects of one tenant share its bucket; another tenant has its own.
    assert await count_passing(limiter, caller("alice", tenant="acme"), 2) == 2
    assert await count_passing(limiter, caller("bob", tenant="acme"), 5) == 1
    assert await count_passing(limiter, caller("carol", tenant="globex"), 5) == 3
    assert await count_passing(limiter, caller("dave", tenant=7), 5) == 3  # an integer value
    assert await count_passing(limiter, caller("erin"), 10) == 10
    assert await count_passing(limiter, caller("frank", tenant=["a", "b"]), 10) == 10


async def test_match_picks_callers_by_scope_claim_and_model() -> None:
    rules = [
        rule(name="free", match={"scopes": ["tier:free"]}, rate_per_s=1, burst=1),
        rule(name="trial", match={"claims": {"plan": ["trial", "demo"]}}, rate_per_s=1, burst=2),
        rule(name="digits-only", match={"models": ["digits"]}, key="shared", rate_per_s=1, burst=4),
    ]
    limiter = Limiter(rules, clock=Clock())
    assert await count_passing(limiter, caller("a", ("tier:free", "models:infer")), 3) == 1
    assert await count_passing(limiter, caller("b", ("models:infer",)), 3) == 3
    assert await count_passing(limiter, caller("c", plan="demo"), 3) == 2
    assert await count_passing(limiter, caller("d", plan="paid"), 3) == 3
    # One bucket shared by every caller, for requests to digits alone.
    assert await count_passing(limiter, caller("e"), 3, "digits") == 3
    assert await count_passing(limiter, caller("f"), 3, "digits") == 1
    assert await count_passing(limiter, caller("f"), 3, "mlp") == 3


async def test_concurrency_counts_requests_in_flight_until_they_leave() -> None:
    limiter = Limiter([rule(concurrency=2)], clock=Clock())
    first = await limiter.enter(caller(), "mlp")
    second = await limiter.enter(caller(), "mlp")
    assert first is not None
    assert second is not None
    with pytest.raises(RateLimited) as refused:
        await limiter.enter(caller(), "mlp")
    assert (refused.value.quota, refused.value.window_s) == (2, None)
    assert refused.value.unit == "concurrent-requests"
    assert "2 requests in flight per subject" in refused.value.message
    assert await passes(limiter, caller("bob"))  # another subject has its own slots
    limiter.leave(first)
    third = await limiter.enter(caller(), "mlp")
    assert third is not None
    limiter.leave(second)
    limiter.leave(third)
    assert await count_passing(limiter, caller(), 2) == 2  # never left: slots stay taken


async def test_a_later_rule_refusing_gives_back_what_the_earlier_took() -> None:
    clock = Clock()
    rules = [
        rule(name="tenant", key="claim:tenant", rate_per_s=1, burst=5, concurrency=10),
        rule(name="subject", rate_per_s=1, burst=1),
    ]
    limiter = Limiter(rules, clock=clock)
    alice = caller("alice", tenant="acme")
    held = await limiter.enter(alice, "mlp")
    assert held is not None
    with pytest.raises(RateLimited) as refused:
        await limiter.enter(alice, "mlp")
    assert refused.value.rule == "subject"
    # The tenant's bucket still has its 4 tokens: nothing was taken for the refusal.
    others = [await passes(limiter, caller(f"s{n}", tenant="acme")) for n in range(9)]
    assert sum(others) == 4


async def test_model_rules_come_first_and_apply_to_that_model_alone() -> None:
    limiter = Limiter([rule(name="server", rate_per_s=1, burst=3)], clock=Clock())
    limiter.set_model_rules("mlp", [rule(name="mlp-rule", rate_per_s=1, burst=1)])
    await limiter.enter(caller(), "mlp")
    with pytest.raises(RateLimited) as refused:
        await limiter.enter(caller(), "mlp")
    assert refused.value.rule == "mlp-rule"
    assert "of model 'mlp'" in refused.value.message
    # One server token went to mlp's request; the other two remain for any model.
    assert await count_passing(limiter, caller(), 5, "digits") == 2


async def test_a_changed_model_rule_keeps_its_buckets_and_applies_at_once() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    assert not limiter.active
    limiter.set_model_rules("mlp", [rule(rate_per_s=1, burst=2)])
    assert limiter.active
    assert await count_passing(limiter, caller(), 5) == 2
    limiter.set_model_rules("mlp", [rule(rate_per_s=10, burst=20)])
    assert await count_passing(limiter, caller(), 5) == 0  # the same bucket, still empty
    clock.now += 0.5
    assert await count_passing(limiter, caller(), 10) == 5  # refilled at the new rate
    limiter.set_model_rules("mlp", [])
    assert not limiter.active


async def test_each_process_keeps_an_even_share() -> None:
    clock = Clock()
    rules = [rule(rate_per_s=10, burst=10)]
    workers = [Limiter(rules, processes=2, clock=clock) for _ in range(2)]
    assert [await count_passing(w, caller(), 20) for w in workers] == [5, 5]
    clock.now += 1.0
    assert [await count_passing(w, caller(), 20) for w in workers] == [5, 5]
    # Concurrency 5 over 2 processes: 2 each (rounded down, at least 1).
    fresh = Limiter([rule(concurrency=5)], processes=2, clock=clock)
    held = [await fresh.enter(caller(), "mlp") for _ in range(2)]
    assert not await passes(fresh, caller())
    assert all(h is not None for h in held)


@settings(max_examples=40, deadline=None)
@given(
    # At least 10/s: each process may end the 10 s holding part of a token, and 100 tokens
    # keep four such parts under 5%.
    rate=st.floats(min_value=10, max_value=200),
    burst=st.integers(min_value=1, max_value=200),
    processes=st.integers(min_value=1, max_value=4),
)
async def test_processes_together_hold_the_rate_within_5_percent_over_10_s(
    rate: float, burst: int, processes: int
) -> None:
    """A flood on every process, each coming back exactly when its refusal said."""
    clock = Clock()
    end = clock.now + 10.0
    rules = [rule(rate_per_s=rate, burst=burst)]
    workers = [Limiter(rules, processes=processes, clock=clock) for _ in range(processes)]
    passed = 0
    while clock.now <= end:
        waits = []
        for worker in workers:
            while True:
                try:
                    await worker.enter(caller(), "mlp")
                except RateLimited as refused:
                    waits.append(refused.retry_after_s)
                    break
                passed += 1
        clock.now += min(waits)
    allowed = max(burst, processes) + rate * 10  # each process has at least one token
    assert 0.95 * allowed <= passed <= allowed + processes


async def test_buckets_beyond_max_keys_drop_full_ones_first_then_the_oldest() -> None:
    clock = Clock()
    limiter = Limiter([rule(rate_per_s=1, burst=1)], max_keys=100, clock=clock)
    for n in range(100):
        await limiter.enter(caller(f"s{n}"), "mlp")
    clock.now += 1.0  # every bucket is full again: dropping them changes nothing
    assert await passes(limiter, caller("newcomer"))
    assert not await passes(limiter, caller("newcomer"))
    for n in range(100, 199):
        await limiter.enter(caller(f"s{n}"), "mlp")
    assert await passes(limiter, caller("one-too-many"))  # the oldest half is reset
    assert not await passes(limiter, caller("s198"))  # the newest are kept
