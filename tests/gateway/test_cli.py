"""The ``tensorgate`` command line (``serve`` itself is covered end to end)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from gateway.cli import base_url, deliver_dev_token, dev_banner, main
from gateway.settings import Settings
from support.paths import DEMO_MODELS


def test_openapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "--models", str(DEMO_MODELS)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["openapi"].startswith("3.1")
    assert "/v2/models/{model_name}/infer" in document["paths"]


def test_openapi_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert main(["openapi", "--models", str(DEMO_MODELS), "--output", str(target)]) == 0
    assert json.loads(target.read_text())["info"]["title"] == "tensorgate"


def test_serve_refuses_a_missing_repository(tmp_path: Path) -> None:
    assert main(["serve", "--models", str(tmp_path / "nope")]) == 2


def test_bad_setting_from_the_environment_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TENSORGATE_PORT", "eighty")
    assert main(["openapi", "--models", str(DEMO_MODELS)]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_config_schema_matches_the_checked_in_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config-schema"]) == 0
    checked_in = DEMO_MODELS.parent / "schemas" / "model-config.schema.json"
    assert json.loads(capsys.readouterr().out) == json.loads(checked_in.read_text())


def test_the_dev_banner_goes_to_the_terminal_when_there_is_one(tmp_path: Path) -> None:
    terminal = tmp_path / "tty"
    terminal.touch()
    where = deliver_dev_token("eyJ.a.b", "banner with eyJ.a.b\n", tmp_path / "state", terminal)
    assert where == terminal
    assert terminal.read_text() == "banner with eyJ.a.b\n"
    assert not (tmp_path / "state").exists()


def test_without_a_terminal_the_token_alone_goes_to_a_private_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev-token").write_text("old")
    (state / "dev-token").chmod(0o644)
    where = deliver_dev_token("eyJ.a.b", "banner\n", state, tmp_path / "no-such-tty")
    assert where == state / "dev-token"
    assert where.read_text() == "eyJ.a.b\n"  # TOKEN=$(cat .tensorgate/dev-token) works
    assert where.stat().st_mode & 0o777 == 0o600


def test_the_dev_banner_names_the_address_it_is_given(tmp_path: Path) -> None:
    banner = dev_banner(tmp_path, "http://127.0.0.1:40123", "eyJ.a.b", 60)
    assert f"the secret in {tmp_path / 'dev-secret'}." in banner
    assert "Open http://127.0.0.1:40123/docs, click Authorize" in banner
    assert "\neyJ.a.b\n" in banner


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        (Settings(), "http://127.0.0.1:40123"),
        (Settings(host="::1"), "http://[::1]:40123"),
        (
            Settings.model_validate({"tls": {"certfile": "c.pem", "keyfile": "k.pem"}}),
            "https://127.0.0.1:40123",
        ),
    ],
)
def test_the_announced_address_has_the_bound_port(settings: Settings, url: str) -> None:
    assert base_url(settings, 40123) == url


@pytest.mark.parametrize(("flag", "workers"), [("auto", "auto"), ("3", 3)])
def test_serve_takes_a_worker_count_or_auto(
    flag: str, workers: int | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Settings] = []
    monkeypatch.setattr(
        "gateway.serving.run.run_server", lambda settings, _on_listening: served.append(settings)
    )
    assert main(["serve", "--no-auth", "--models", str(DEMO_MODELS), "--workers", flag]) == 0
    assert [settings.workers for settings in served] == [workers]


def test_serve_refuses_a_worker_count_that_is_neither(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "many"])
    assert "'many' is not a number or 'auto'" in capsys.readouterr().err


def test_serve_refuses_a_redis_password_file_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TENSORGATE_LIMITS__REDIS__URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TENSORGATE_LIMITS__REDIS__PASSWORD_FILE", str(tmp_path / "absent"))
    assert main(["serve", "--models", str(DEMO_MODELS), "--no-auth"]) == 2
    assert "limits.redis.password_file: cannot read" in caplog.text


def test_serve_stops_at_once_when_the_grpc_port_is_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code = main(["serve", "--models", str(DEMO_MODELS), "--grpc-port", str(port)])
    assert code == 2
    assert f"127.0.0.1:{port} (grpc.port)" in caplog.text
