"""The TLS files loaded at start-up as the server will load them, so that a file that is
missing, unreadable or wrong stops ``serve`` with a message naming the setting and the
file (docs/operations.md#tls), not with uvicorn's bare ``[Errno 2]`` later on."""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.listener_settings import TlsSettings

CERTFILE = "tls.certfile (--tls-cert, TENSORGATE_TLS__CERTFILE)"
KEYFILE = "tls.keyfile (--tls-key, TENSORGATE_TLS__KEYFILE)"
KEYFILE_PASSWORD = "tls.keyfile_password (TENSORGATE_TLS__KEYFILE_PASSWORD)"
CLIENT_CA = "tls.client_ca (--tls-client-ca, TENSORGATE_TLS__CLIENT_CA)"
_MISMATCH = "KEY_VALUES_MISMATCH"


class TlsFileError(Exception):
    """A TLS file that cannot be used; the message names the setting and the file."""


class _NoPassword(Exception):
    """The key is encrypted and no password is configured."""


def check_tls(tls: TlsSettings) -> None:
    """Load the certificate, key and client CA as the server will; raise ``TlsFileError``
    for the first that fails. Does nothing when TLS is off."""
    if tls.certfile is None or tls.keyfile is None:
        return
    for setting, path in ((CERTFILE, tls.certfile), (KEYFILE, tls.keyfile)):
        _readable(setting, path)
    _holds_certificates(CERTFILE, tls.certfile)
    _loads_with_key(tls)
    if tls.client_ca is not None:
        _readable(CLIENT_CA, tls.client_ca)
        _holds_certificates(CLIENT_CA, tls.client_ca)


def _readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise TlsFileError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _holds_certificates(setting: str, path: Path) -> None:
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_verify_locations(str(path))
    except ssl.SSLError:
        raise TlsFileError(f"{setting}: {path} holds no PEM certificate") from None


def _loads_with_key(tls: TlsSettings) -> None:
    """The certificate chain with its key, as uvicorn loads them; OpenSSL would prompt
    on the terminal for the password of an encrypted key: here a missing one is an error."""
    configured = tls.keyfile_password.get_secret_value() if tls.keyfile_password else None

    def password() -> str:
        if configured is None:
            raise _NoPassword
        return configured

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(tls.certfile), str(tls.keyfile), password)
    except _NoPassword:
        raise TlsFileError(
            f"{KEYFILE}: {tls.keyfile} is encrypted and {KEYFILE_PASSWORD} is not set"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == _MISMATCH:
            raise TlsFileError(
                f"{KEYFILE}: {tls.keyfile} is not the key of the certificate in "
                f"tls.certfile {tls.certfile}"
            ) from None
        wrong_password = f", or {KEYFILE_PASSWORD} is wrong" if configured is not None else ""
        raise TlsFileError(
            f"{KEYFILE}: {tls.keyfile} holds no PEM private key that loads{wrong_password}"
        ) from None
