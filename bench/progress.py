"""A one-line progress bar on stderr with an estimate of the time left."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts finished steps out of ``total`` and redraws the bar."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.done = 0
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        """Show that ``label`` is running now."""
        self._draw(label)

    def finish(self, label: str) -> None:
        """Mark one step finished."""
        self.done += 1
        self._draw(label)
        if self.done >= self.total:
            sys.stderr.write("\n")

    def _draw(self, label: str) -> None:
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        filled = int(30 * self.done / self.total)
        bar = "#" * filled + "-" * (30 - filled)
        sys.stderr.write(
            f"\r[{bar}] {self.done}/{self.total} {elapsed:5.0f}s elapsed, ~{left:4.0f}s left "
            f"{label[:40]:<40}"
        )
        sys.stderr.flush()
