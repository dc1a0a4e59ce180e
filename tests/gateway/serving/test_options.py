"""What uvicorn is handed: the HTTP implementation (http_protocol) and the access log."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from gateway.cli import main
from gateway.serving import run
from gateway.serving.coalescing import CoalescingHttpToolsProtocol
from gateway.serving.options import uvicorn_options
from gateway.settings import Settings

DEMO = Path(__file__).resolve().parents[3] / "models"


def test_coalescing_is_the_default() -> None:
    assert uvicorn_options(Settings())["http"] is CoalescingHttpToolsProtocol


@pytest.mark.parametrize("stock", ["httptools", "h11"])
def test_the_stock_implementations_are_handed_to_uvicorn_by_name(stock: str) -> None:
    assert uvicorn_options(Settings(http_protocol=stock))["http"] == stock  # type: ignore[arg-type]


def test_the_cli_flag_and_the_environment_choose_it(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Settings] = []
    monkeypatch.setattr(run, "run_server", served.append)
    assert main(["serve", "--no-auth", "--models", str(DEMO), "--http", "h11"]) == 0
    monkeypatch.setenv("TENSORGATE_HTTP_PROTOCOL", "httptools")
    assert main(["serve", "--no-auth", "--models", str(DEMO)]) == 0
    assert [settings.http_protocol for settings in served] == ["h11", "httptools"]


def test_an_unknown_implementation_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--http", "quic"])
    assert "invalid choice: 'quic'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("level", "access_log"),
    [("debug", True), ("info", True), ("warning", False), ("error", False)],
)
def test_uvicorn_keeps_its_access_log_only_where_the_level_shows_it(
    level: Literal["debug", "info", "warning", "error"], access_log: bool
) -> None:
    options = uvicorn_options(Settings(log_level=level))
    assert options["access_log"] is access_log
