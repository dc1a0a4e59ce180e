"""Each caller's share of a contended server: its flow (share key) and weight.

The flow is the token subject, or the value of a configured claim so that the callers of
one tenant share as one; the weight comes from the settings' table or a claim. Both are
worked out once per principal (the authenticator hands out the same principal for a
cached token) and used by the batcher's fair queue and the serving process's fair reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.auth.principal import Principal
from gateway.settings import FairShareSettings

_CLAIM_PREFIX = "claim:"
_MAX_CACHED = 4096
_WEIGHT_RANGE = (0.001, 1000.0)


@dataclass(frozen=True, slots=True)
class Share:
    """A caller's share key and weight; ``flow`` is empty when sharing is off."""

    flow: str
    weight: float = 1.0


UNSHARED = Share("")


class FairShares:
    """Works out callers' shares from ``settings.fair_share``."""

    def __init__(self, settings: FairShareSettings) -> None:
        self._settings = settings
        key = settings.key
        self._claim = key[len(_CLAIM_PREFIX) :] if key.startswith(_CLAIM_PREFIX) else None
        self._cache: dict[int, tuple[Principal, Share]] = {}

    def of(self, principal: Principal) -> Share:
        """``principal``'s share (cached by identity)."""
        cached = self._cache.get(id(principal))
        if cached is not None and cached[0] is principal:
            return cached[1]
        share = self._work_out(principal)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[id(principal)] = (principal, share)
        return share

    def _work_out(self, principal: Principal) -> Share:
        settings = self._settings
        if not settings.enabled:
            return UNSHARED
        flow = principal.subject
        if self._claim is not None:
            value = principal.claims.get(self._claim)
            if isinstance(value, str | int) and not isinstance(value, bool):
                flow = f"{self._claim}={value}"
                weight = settings.weights.get(str(value))
                return Share(flow, weight if weight is not None else self._claimed(principal))
        weight = settings.weights.get(principal.subject)
        return Share(flow, weight if weight is not None else self._claimed(principal))

    def _claimed(self, principal: Principal) -> float:
        name = self._settings.weight_claim
        value = None if name is None else principal.claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            low, high = _WEIGHT_RANGE
            return min(max(float(value), low), high)
        return 1.0
