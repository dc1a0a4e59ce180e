"""A request's deadline: the protocol's ``timeout`` parameter, a header, or the model's default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import InvalidInput

TIMEOUT_HEADER = "x-request-timeout-ms"


def request_timeout_s(
    parameters: Mapping[str, Any] | None, header: str | None, default_ms: float | None
) -> float | None:
    """The request's deadline in seconds from now, or None for no deadline.

    Order: the protocol's ``parameters.timeout`` (microseconds, as Triton's client sends
    it), then the ``X-Request-Timeout-Ms`` header, then the model's default. A timeout
    of 0 means "not set", as in Triton.
    """
    value = (parameters or {}).get("timeout")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(
                f"parameter timeout must be a non-negative integer of microseconds, got {value!r}"
            )
        if value > 0:
            return value / 1_000_000
    if header is not None:
        try:
            millis = float(header)
        except ValueError:
            millis = -1.0
        if not millis >= 0 or millis == float("inf"):
            raise InvalidInput(
                "header X-Request-Timeout-Ms must be a non-negative number of milliseconds, "
                f"got {header[:32]!r}"
            )
        if millis > 0:
            return millis / 1000
    return None if default_ms is None else default_ms / 1000
