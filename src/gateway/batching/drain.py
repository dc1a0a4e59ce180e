"""How fast a queue drains (behind ``Retry-After``) and how long one backend call takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Weight of the newest batch in the average.
RATE_SMOOTHING = 0.2
MAX_RETRY_AFTER_S = 60.0


@dataclass(slots=True)
class DrainRate:
    """Requests finished per second, smoothed over recent batches."""

    per_second: float = 0.0
    samples: int = 0

    def record(self, requests: int, seconds: float, parallel: int) -> None:
        """A batch of ``requests`` took ``seconds`` on one of ``parallel`` instances."""
        rate = requests * parallel / max(seconds, 1e-6)
        if self.samples == 0:
            self.per_second = rate
        else:
            self.per_second += RATE_SMOOTHING * (rate - self.per_second)
        self.samples += 1

    def seconds_to_drain(self, queued: int) -> float:
        """Estimated seconds until ``queued`` requests and one more are answered; 1 s
        before anything has been measured, never more than ``MAX_RETRY_AFTER_S``."""
        if self.per_second <= 0:
            return 1.0
        return min(MAX_RETRY_AFTER_S, max(0.001, (queued + 1) / self.per_second))


@dataclass(slots=True)
class CallTime:
    """The smoothed duration of one backend call, as the runtime's thread measured it;
    infinite until one has been measured (so nothing is handed ahead before then)."""

    seconds: float = math.inf

    def record(self, seconds: float) -> None:
        """One more call took ``seconds``."""
        if math.isinf(self.seconds):
            self.seconds = seconds
        else:
            self.seconds += RATE_SMOOTHING * (seconds - self.seconds)
