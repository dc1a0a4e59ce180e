"""The TLS files checked at start-up: each failure names the setting and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.cli import main
from gateway.listener_settings import TlsSettings
from gateway.serving.tls import TlsFileError, check_tls
from support.paths import DEMO_MODELS
from support.pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server and a client certificate with their keys."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls(pki: Pki, **changes: object) -> TlsSettings:
    fields: dict[str, object] = {"certfile": pki.server_cert, "keyfile": pki.server_key}
    return TlsSettings.model_validate({**fields, **changes})


def _with_ca(pki: Pki, setting: str, path: Path) -> TlsSettings:
    """Every file set, the client CA included, with ``setting`` pointing at ``path``."""
    return _tls(pki, **{"client_ca": pki.ca, setting: path})


def _encrypted(pki: Pki, path: Path, password: bytes) -> Path:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return path


def test_good_files_pass_and_tls_off_checks_nothing(pki: Pki) -> None:
    check_tls(_tls(pki))
    check_tls(_tls(pki, client_ca=pki.ca))
    check_tls(TlsSettings())


@pytest.mark.parametrize(
    ("setting", "flag", "variable"),
    [
        ("certfile", "--tls-cert", "TENSORGATE_TLS__CERTFILE"),
        ("keyfile", "--tls-key", "TENSORGATE_TLS__KEYFILE"),
        ("client_ca", "--tls-client-ca", "TENSORGATE_TLS__CLIENT_CA"),
    ],
)
def test_a_missing_file_is_named_with_its_setting(
    pki: Pki, tmp_path: Path, setting: str, flag: str, variable: str
) -> None:
    missing = tmp_path / "missing.pem"
    tls = _with_ca(pki, setting, missing)
    with pytest.raises(TlsFileError) as refused:
        check_tls(tls)
    assert str(refused.value) == (
        f"tls.{setting} ({flag}, {variable}): cannot read {missing}: No such file or directory"
    )


def test_an_unreadable_key_is_named(pki: Pki, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(TlsFileError, match=rf"^tls\.keyfile .*: cannot read {directory}: "):
        check_tls(_tls(pki, keyfile=directory))


@pytest.mark.parametrize("setting", ["certfile", "client_ca"])
def test_a_file_without_a_certificate_is_named(pki: Pki, setting: str) -> None:
    with pytest.raises(TlsFileError) as refused:
        check_tls(_with_ca(pki, setting, pki.server_key))
    assert f"tls.{setting} (" in str(refused.value)
    assert str(refused.value).endswith(f"{pki.server_key} holds no PEM certificate")


def test_a_key_that_is_no_key_is_named(pki: Pki) -> None:
    with pytest.raises(TlsFileError) as refused:
        check_tls(_tls(pki, keyfile=pki.ca))
    assert str(refused.value) == (
        f"tls.keyfile (--tls-key, TENSORGATE_TLS__KEYFILE): {pki.ca} holds no PEM private "
        "key that loads"
    )


def test_a_key_of_another_certificate_is_named_with_both_files(pki: Pki) -> None:
    with pytest.raises(TlsFileError) as refused:
        check_tls(_tls(pki, keyfile=pki.client_key))
    assert str(refused.value) == (
        f"tls.keyfile (--tls-key, TENSORGATE_TLS__KEYFILE): {pki.client_key} is not the key "
        f"of the certificate in tls.certfile {pki.server_cert}"
    )


def test_an_encrypted_key_needs_its_password(pki: Pki, tmp_path: Path) -> None:
    key = _encrypted(pki, tmp_path / "encrypted.key", b"right")
    check_tls(_tls(pki, keyfile=key, keyfile_password="right"))
    with pytest.raises(TlsFileError, match=r"is encrypted and tls\.keyfile_password .* is not set"):
        check_tls(_tls(pki, keyfile=key))  # never a prompt on the terminal
    with pytest.raises(TlsFileError, match=r"or tls\.keyfile_password .* is wrong$"):
        check_tls(_tls(pki, keyfile=key, keyfile_password="wrong"))


def test_serve_stops_with_status_2_and_one_line(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing.pem"
    args = ["serve", "--models", str(DEMO_MODELS), "--no-auth"]
    assert main([*args, "--tls-cert", str(missing), "--tls-key", str(pki.server_key)]) == 2
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == (
        f"TLS settings: tls.certfile (--tls-cert, TENSORGATE_TLS__CERTFILE): cannot read "
        f"{missing}: No such file or directory"
    )
    assert record.exc_info is None
