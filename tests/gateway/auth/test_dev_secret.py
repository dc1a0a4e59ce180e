"""The dev secret: created once with mode 0600, reused, safe when workers race."""

from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.auth.dev_secret import SECRET_FILE, DevSecret, load_or_create_dev_secret
from gateway.auth.keys import KeyConfigError


def test_created_once_then_reused(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    first = load_or_create_dev_secret(state)
    assert first.created
    assert len(first.secret.get_secret_value()) >= 64
    assert stat.S_IMODE((state / SECRET_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    again = load_or_create_dev_secret(state)
    assert (again.secret, again.created) == (first.secret, False)
    assert [p.name for p in state.iterdir()] == [SECRET_FILE]  # no temporary files left


def test_racing_workers_agree_on_one_secret(tmp_path: Path) -> None:
    workers = 8
    barrier = threading.Barrier(workers)

    def start() -> DevSecret:
        barrier.wait(timeout=10)
        return load_or_create_dev_secret(tmp_path)

    with ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(lambda _: start(), range(workers)))
    secrets = {dev.secret.get_secret_value() for dev in found}
    assert len(secrets) == 1
    assert (tmp_path / SECRET_FILE).read_text().strip() in secrets
    assert sum(dev.created for dev in found) == 1


def test_refuses_a_secret_others_can_read(tmp_path: Path) -> None:
    load_or_create_dev_secret(tmp_path)
    (tmp_path / SECRET_FILE).chmod(0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        load_or_create_dev_secret(tmp_path)


def test_refuses_an_empty_secret_file(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILE
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(KeyConfigError, match="delete it"):
        load_or_create_dev_secret(tmp_path)
