"""What uvicorn is handed: the HTTP implementation (http_protocol) with the connection
limits, the timeouts, TLS, and no access log of its own."""

from __future__ import annotations

import pickle
import resource
import ssl
from pathlib import Path
from typing import Literal

import pytest

from gateway.cli import main
from gateway.serving import run
from gateway.serving.coalescing import CoalescingHttpToolsProtocol
from gateway.serving.connection_limits import ConnectionLimits, LimitedHttpToolsProtocol
from gateway.serving.cpus import available_cpus
from gateway.serving.descriptors import (
    RESERVED_DESCRIPTORS,
    connection_cap,
    raise_descriptor_limit,
)
from gateway.serving.options import fair_reads_capacity, uvicorn_options
from gateway.settings import FairShareSettings, Settings

DEMO = Path(__file__).resolve().parents[3] / "models"


def test_coalescing_is_the_default_and_carries_the_limits() -> None:
    factory = uvicorn_options(Settings(workers=2))["http"]
    assert factory.func is CoalescingHttpToolsProtocol
    assert factory.keywords["limits"] == ConnectionLimits(
        header_timeout_s=10.0,
        body_idle_timeout_s=30.0,
        max_header_bytes=65536,
        max_connections=4096,
        shutdown_idle_close_s=0.5,
        fair_reads_capacity=8,  # auto: 4 per worker process
        fair_reads_view_s=0.005,
    )


@pytest.mark.parametrize(
    ("fair_share", "workers", "capacity"),
    [
        (FairShareSettings(), 1, 4),
        (FairShareSettings(), 3, 12),
        (FairShareSettings(loop_concurrency=16), 2, 16),
        (FairShareSettings(enabled=False), 2, None),
    ],
)
def test_fair_reads_hold_back_past_four_requests_per_worker_unless_set(
    fair_share: FairShareSettings, workers: int, capacity: int | None
) -> None:
    settings = Settings(fair_share=fair_share, workers=workers)
    assert fair_reads_capacity(settings) == capacity
    assert fair_reads_capacity(Settings()) == 4 * min(available_cpus(), 64)


def test_stock_httptools_gets_the_same_limits() -> None:
    factory = uvicorn_options(Settings(http_protocol="httptools", max_header_bytes=9000))["http"]
    assert factory.func is LimitedHttpToolsProtocol
    assert factory.keywords["limits"].max_header_bytes == 9000
    assert pickle.loads(pickle.dumps(factory)).keywords == factory.keywords  # for --workers


def test_h11_is_uvicorns_own_with_its_head_cap_and_concurrency_limit() -> None:
    options = uvicorn_options(Settings(http_protocol="h11", max_header_bytes=9000))
    assert options["http"] == "h11"
    assert options["h11_max_incomplete_event_size"] == 9000
    assert options["limit_concurrency"] == 4096


def test_timeouts_and_grace_go_to_uvicorn() -> None:
    options = uvicorn_options(Settings(keep_alive_timeout_s=2.5, shutdown_grace_s=7))
    assert options["timeout_keep_alive"] == 2.5
    assert options["timeout_graceful_shutdown"] == 7


def test_max_connections_is_lowered_to_fit_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1000, 1000))
    assert connection_cap(4096) == 1000 - RESERVED_DESCRIPTORS
    assert connection_cap(100) == 100


def test_the_descriptor_limit_is_raised_towards_what_the_cap_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 8192))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))
    raise_descriptor_limit(4096)
    raise_descriptor_limit(100_000)
    assert set_to == [(4096 + RESERVED_DESCRIPTORS, 8192), (8192, 8192)]


def test_the_cli_flag_and_the_environment_choose_it(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Settings] = []
    monkeypatch.setattr(run, "run_server", lambda settings, _: served.append(settings))
    assert main(["serve", "--no-auth", "--models", str(DEMO), "--http", "h11"]) == 0
    monkeypatch.setenv("TENSORGATE_HTTP_PROTOCOL", "httptools")
    assert main(["serve", "--no-auth", "--models", str(DEMO)]) == 0
    assert [settings.http_protocol for settings in served] == ["h11", "httptools"]


def test_an_unknown_implementation_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--http", "quic"])
    assert "invalid choice: 'quic'" in capsys.readouterr().err


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_uvicorn_writes_no_access_log_of_its_own(
    level: Literal["debug", "info", "warning", "error"],
) -> None:
    assert uvicorn_options(Settings(log_level=level))["access_log"] is False


def test_tls_settings_reach_uvicorn(tmp_path: Path) -> None:
    cert, key, ca = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    options = uvicorn_options(
        Settings.model_validate(
            {"tls": {"certfile": cert, "keyfile": key, "client_ca": ca, "keyfile_password": "pw"}}
        )
    )
    assert (options["ssl_certfile"], options["ssl_keyfile"]) == (str(cert), str(key))
    assert options["ssl_keyfile_password"] == "pw"
    assert options["ssl_ca_certs"] == str(ca)
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert "ssl_certfile" not in uvicorn_options(Settings())


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"certfile": "c.pem"}, "tls.certfile and tls.keyfile go together"),
        ({"keyfile": "k.pem"}, "tls.certfile and tls.keyfile go together"),
        ({"client_ca": "ca.pem"}, "needs tls.certfile and tls.keyfile"),
    ],
)
def test_incomplete_tls_settings_are_refused(tls: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.model_validate({"tls": tls})


def test_serve_refuses_tls_files_it_cannot_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing.pem"
    code = main(
        ["serve", "--models", str(DEMO), "--tls-cert", str(missing), "--tls-key", str(missing)]
    )
    assert code == 2
    assert "TLS settings" in caplog.text
