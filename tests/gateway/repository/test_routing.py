"""Version labels and the traffic split: weights, stickiness, targets that are not ready."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.repository.config import ModelConfig
from gateway.repository.routing import Routing, draw, pick_weighted


def routing(config: dict[str, object]) -> Routing:
    """The routing a ``config.yaml`` document asks for."""
    return Routing.of(ModelConfig.model_validate(config))


SPLIT = {
    "version_labels": {"stable": 1, "canary": 2},
    "traffic": {"split": {"stable": 95, "canary": 5}},
}


def test_labels_and_numbers_name_versions() -> None:
    r = routing(SPLIT)
    assert (r.version_of("stable"), r.version_of("canary"), r.version_of("7")) == (1, 2, 7)
    assert r.version_of("beta") is None
    assert r.version_of("07") is None
    assert r.labels_of(2) == ["canary"]
    assert r.labels_of(3) == []


def test_no_split_chooses_nothing() -> None:
    assert routing({"version_labels": {"stable": 1}}).choose(lambda n: n, None) is None


@given(
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
    point=st.floats(0, 1, exclude_max=True),
)
def test_a_pick_is_always_a_candidate_with_weight(weights: list[int], point: float) -> None:
    candidates = [(index, weight) for index, weight in enumerate(weights) if weight > 0]
    chosen = pick_weighted(candidates, point)
    assert chosen in {index for index, _ in candidates}


@given(st.text(max_size=40))
def test_a_key_always_draws_the_same_point(key: str) -> None:
    point = draw(key)
    assert 0 <= point < 1
    assert draw(key) == point


def test_the_split_shares_requests_by_weight() -> None:
    r = routing(SPLIT)
    counts = Counter(r.choose(lambda n: n, None) for _ in range(20_000))
    assert set(counts) == {1, 2}
    assert abs(counts[2] / 20_000 - 0.05) < 0.01


def test_sticky_keys_keep_their_version_and_spread_by_weight() -> None:
    r = routing({**SPLIT, "traffic": {"split": {"stable": 50, "canary": 50}, "sticky": "subject"}})
    picks = {f"user-{n}": r.choose(lambda v: v, f"user-{n}") for n in range(2000)}
    assert all(r.choose(lambda v: v, key) == version for key, version in picks.items())
    share = sum(1 for v in picks.values() if v == 2) / len(picks)
    assert 0.45 < share < 0.55


def test_a_target_that_is_not_ready_gives_its_share_to_the_others() -> None:
    r = routing(SPLIT)
    only_stable = {1}
    picks = {r.choose(lambda n: n if n in only_stable else None, None) for _ in range(500)}
    assert picks == {1}
    assert r.choose(lambda n: None, None) is None


def test_zero_weight_targets_take_nothing() -> None:
    r = routing({**SPLIT, "traffic": {"split": {"stable": 0, "canary": 1}}})
    assert {r.choose(lambda n: n, None) for _ in range(200)} == {2}


def test_a_sticky_header_is_matched_case_insensitively() -> None:
    r = routing({**SPLIT, "traffic": {"split": {"stable": 1}, "sticky": {"header": "X-User"}}})
    assert r.sticky == "x-user"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"traffic": {"split": {"beta": 1}}}, "'beta' is neither a version label"),
        ({"traffic": {"split": {"1": 0}}}, "at least one target with a weight above 0"),
        ({"traffic": {"split": {"1": -1}}}, "greater than or equal to 0"),
        ({"version_labels": {"Stable": 1}}, "should match pattern"),
        ({"version_labels": {"7": 1}}, "should match pattern"),
        ({"traffic": {"split": {"1": 1}, "sticky": "cookie"}}, "sticky"),
    ],
)
def test_bad_routing_configs_are_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig.model_validate(config)


def test_integer_split_keys_from_yaml_are_version_numbers() -> None:
    r = routing({"traffic": {"split": {1: 1, 2: 3}}})
    assert dict(r.split) == {"1": 1, "2": 3}
