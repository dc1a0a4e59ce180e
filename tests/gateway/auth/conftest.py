"""Fixtures of the auth tests: trusted keys and the files that hold them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from support.authkit import KeyPair, ec_pair, rsa_pair


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    """The RSA key the server trusts (PEM file)."""
    return rsa_pair()


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    """The EC key the server trusts (JWKS file, kid ec-1)."""
    return ec_pair()


@pytest.fixture(scope="session")
def secret() -> str:
    """The shared HMAC secret the server trusts."""
    return secrets.token_urlsafe(48)


@pytest.fixture
def jwks_file(tmp_path: Path, ec_key: KeyPair) -> Path:
    """A JWKS file holding the trusted EC key."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [ec_key.public_jwk()]}))
    return path


@pytest.fixture
def public_key_file(tmp_path: Path, rsa_key: KeyPair) -> Path:
    """A PEM file holding the trusted RSA public key."""
    path = tmp_path / "rsa.pem"
    path.write_bytes(rsa_key.public_pem)
    return path
