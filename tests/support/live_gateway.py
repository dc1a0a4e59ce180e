"""What the client tests share: the repository root, the live server, held-out digits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
