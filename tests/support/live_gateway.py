"""What the client tests share: the live server they talk to, and held-out digits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens, and a token it accepts for inference on ``digits``."""

    base_url: str
    token: str


@dataclass(frozen=True)
class Digits:
    """Held-out rows of scikit-learn's digits data set and their true labels."""

    pixels: list[list[float]]
    labels: list[int]
