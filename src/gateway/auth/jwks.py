"""An identity provider's JWKS fetched over HTTP, cached, refetched on an unknown ``kid``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from gateway.auth.keys import KeyConfigError, VerificationKey, jwks_keys, select

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1024 * 1024


class RemoteJwks:
    """A JWKS URL's keys, refetched on an unknown ``kid`` at most once per interval."""

    def __init__(
        self,
        url: str,
        algorithms: Sequence[str],
        client: httpx.AsyncClient,
        *,
        min_refresh_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = tuple(algorithms)
        self.client = client
        self.min_refresh_interval_s = min_refresh_interval_s
        self.clock = clock
        self.keys: list[VerificationKey] = []
        self.fetches = 0
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    async def keys_for(self, kid: str | None, algorithm: str) -> list[VerificationKey]:
        """Cached keys that fit; on a miss, one refetch if the interval allows."""
        found = select(self.keys, kid, algorithm)
        if found:
            return found
        await self.refresh()
        return select(self.keys, kid, algorithm)

    async def refresh(self) -> None:
        """Fetch the key set unless a fetch was tried less than the interval ago."""
        # The lock makes a burst of unknown kids share one fetch instead of each racing.
        async with self._lock:
            now = self.clock()
            if (
                self._last_attempt is not None
                and now - self._last_attempt < self.min_refresh_interval_s
            ):
                return
            self._last_attempt = now
            self.fetches += 1
            try:
                self.keys = jwks_keys(await self._fetch(), self.algorithms)
            except (httpx.HTTPError, ValueError) as exc:
                # Keep serving with the keys we had; the next miss after the interval retries.
                logger.warning("JWKS fetch from %s failed: %s", self.url, _reason(exc))
                return
            logger.info("JWKS from %s: %d usable key(s)", self.url, len(self.keys))

    async def _fetch(self) -> object:
        response = await self.client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise KeyConfigError(f"JWKS document is over {MAX_JWKS_BYTES} bytes")
        return response.json()


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"
