"""Settings travel to spawned worker processes as TENSORGATE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.serving.workers import create_worker_app, settings_environment
from gateway.settings import Settings


def test_settings_round_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(model_repository=tmp_path, port=9123, workers=2, log_level="warning")
    environment = settings_environment(original)
    assert environment["TENSORGATE_WORKERS"] == "2"
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert Settings() == original
    app = create_worker_app()
    assert app.title == "tensorgate"
