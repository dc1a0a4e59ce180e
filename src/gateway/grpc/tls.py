"""gRPC's server credentials from the HTTP TLS settings (``tls.*``): one certificate, one
client CA, for both transports."""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization

from gateway.listener_settings import TlsSettings


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RuntimeError(f"gRPC TLS: cannot read {setting} {path}: {exc.strerror}") from None


def _private_key(tls: TlsSettings) -> bytes:
    """The key as unencrypted PEM: gRPC takes no password, so an encrypted key is opened
    here (it stays in memory only)."""
    assert tls.keyfile is not None
    data = _read(tls.keyfile, "tls.keyfile")
    if tls.keyfile_password is None:
        return data
    password = tls.keyfile_password.get_secret_value().encode()
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"gRPC TLS: cannot open tls.keyfile {tls.keyfile}: {exc}") from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """None without TLS; with ``tls.client_ca``, client certificates are required."""
    if tls.certfile is None:
        return None
    chain = _read(tls.certfile, "tls.certfile")
    client_ca = None if tls.client_ca is None else _read(tls.client_ca, "tls.client_ca")
    return grpc.ssl_server_credentials(
        [(_private_key(tls), chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
