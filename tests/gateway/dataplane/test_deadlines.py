"""Where a request's deadline comes from: parameters.timeout, the header, the default."""

from __future__ import annotations

import pytest

from gateway.dataplane.deadlines import request_timeout_s
from gateway.errors import InvalidInput


def test_parameter_in_microseconds_wins() -> None:
    assert request_timeout_s({"timeout": 250_000}, "10", 5000) == pytest.approx(0.25)


def test_header_in_milliseconds_then_the_default() -> None:
    assert request_timeout_s(None, "12.5", 5000) == pytest.approx(0.0125)
    assert request_timeout_s({}, None, 5000) == pytest.approx(5.0)
    assert request_timeout_s({}, None, None) is None


def test_zero_means_not_set() -> None:
    assert request_timeout_s({"timeout": 0}, "0", 750) == pytest.approx(0.75)


@pytest.mark.parametrize("value", [-1, 1.5, "100", True])
def test_bad_parameter_is_invalid(value: object) -> None:
    with pytest.raises(InvalidInput, match="microseconds"):
        request_timeout_s({"timeout": value}, None, None)


@pytest.mark.parametrize("header", ["soon", "-3", "nan", "inf"])
def test_bad_header_is_invalid(header: str) -> None:
    with pytest.raises(InvalidInput, match="X-Request-Timeout-Ms"):
        request_timeout_s(None, header, None)
