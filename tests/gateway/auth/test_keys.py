"""Loading verification keys: each bound to one algorithm, unusable material refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk
from pydantic import SecretStr

from gateway.auth.keyring import build_key_ring, static_keys
from gateway.auth.keys import (
    KeyConfigError,
    jwks_keys,
    pem_keys,
    require_cryptography_backend,
    secret_keys,
    select,
)
from gateway.settings import AuthSettings
from support.authkit import KeyPair, b64, claims, ec_pair, sign
from support.paths import TESTS


def test_python_jose_uses_the_cryptography_backend() -> None:
    require_cryptography_backend()


@pytest.mark.parametrize(("algorithm", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_short_secrets_are_refused(algorithm: str, minimum: int) -> None:
    with pytest.raises(KeyConfigError, match=f"at least {minimum}"):
        secret_keys(b"k" * (minimum - 1), [algorithm])
    assert [k.algorithm for k in secret_keys(b"k" * minimum, [algorithm])] == [algorithm]


def test_a_pem_key_is_not_an_hmac_secret(rsa_key: KeyPair) -> None:
    with pytest.raises(KeyConfigError, match="not usable for HS256"):
        secret_keys(rsa_key.public_pem, ["HS256"])


def test_an_rsa_pem_gives_one_key_per_allowed_rsa_algorithm(rsa_key: KeyPair) -> None:
    keys = pem_keys(rsa_key.public_pem, ["RS256", "ES256", "RS512"])
    assert [k.algorithm for k in keys] == ["RS256", "RS512"]
    # The private key's PEM verifies with its public half.
    assert [k.algorithm for k in pem_keys(rsa_key.private_pem, ["RS256"])] == ["RS256"]


def test_an_ec_key_binds_to_its_curve_only(ec_key: KeyPair) -> None:
    assert [k.algorithm for k in pem_keys(ec_key.public_pem, ["RS256", "ES256"])] == ["ES256"]
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyConfigError, match="secp384r1 key cannot verify"):
        pem_keys(pem, ["ES256"])


def test_small_rsa_keys_and_garbage_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyConfigError, match="1024 bits"):
        pem_keys(pem, ["RS256"])
    with pytest.raises(KeyConfigError, match="not a readable PEM"):
        pem_keys(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", ["RS256"])


def test_a_key_verifies_only_its_own_algorithm(rsa_key: KeyPair) -> None:
    (rs256,) = pem_keys(rsa_key.public_pem, ["RS256"])
    (rs512,) = pem_keys(rsa_key.public_pem, ["RS512"])
    token = sign(rsa_key.private_pem.decode(), "RS256", claims())
    assert json.loads(rs256.verify(token))["sub"] == "alice"
    with pytest.raises(Exception, match="alg"):
        rs512.verify(token)


def test_jwks_skips_what_it_cannot_use(
    rsa_key: KeyPair, ec_key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    good = ec_key.public_jwk()
    document = {
        "keys": [
            good,
            {"kty": "oct", "k": b64(b"s" * 32), "kid": "sym"},
            {**rsa_key.public_jwk(), "use": "enc"},
            {**rsa_key.public_jwk(), "alg": "RS384", "kid": "other-alg"},
            {"kty": "RSA", "n": "!!", "e": "AQAB", "kid": "broken"},
            "not an object",
        ]
    }
    keys = jwks_keys(document, ["RS256", "ES256"])
    assert [(k.kid, k.algorithm) for k in keys] == [("ec-1", "ES256")]
    assert caplog.text.count("JWKS key #") == 5
    with pytest.raises(KeyConfigError, match='"keys" list'):
        jwks_keys({"kty": "RSA"}, ["RS256"])


def test_a_private_jwk_is_used_by_its_public_half() -> None:
    pair = ec_pair("priv")
    private = serialization.load_pem_private_key(pair.private_pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    data = jwk.construct(pair.private_pem, "ES256").to_dict()
    assert "d" in data
    (key,) = jwks_keys({"keys": [{**data, "kid": "priv"}]}, ["ES256"])
    token = sign(pair.private_pem.decode(), "ES256", claims(), kid="priv")
    assert json.loads(key.verify(token))["sub"] == "alice"
    assert not hasattr(key.key.prepared_key, "private_bytes")


def test_select_matches_kid_and_algorithm(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    keys = [
        *pem_keys(rsa_key.public_pem, ["RS256"]),
        *jwks_keys({"keys": [ec_key.public_jwk()]}, ["ES256"]),
    ]
    assert [k.algorithm for k in select(keys, None, "ES256")] == ["ES256"]
    assert select(keys, "other", "ES256") == []
    # A key without a kid (a PEM file) is a candidate whatever kid the token names.
    assert [k.algorithm for k in select(keys, "whatever", "RS256")] == ["RS256"]


def test_settings_files_are_read_and_errors_name_the_file(
    tmp_path: Path, public_key_file: Path, jwks_file: Path
) -> None:
    auth = AuthSettings(
        secret=SecretStr("s" * 32), public_key_file=public_key_file, jwks_file=jwks_file
    )
    assert sorted(k.algorithm for k in static_keys(auth)) == ["ES256", "HS256", "RS256"]
    missing = AuthSettings(public_key_file=tmp_path / "absent.pem")
    with pytest.raises(KeyConfigError, match=r"absent\.pem"):
        static_keys(missing)
    empty_jwks = tmp_path / "empty.json"
    empty_jwks.write_text('{"keys": []}')
    with pytest.raises(KeyConfigError, match="no usable key"):
        static_keys(AuthSettings(jwks_file=empty_jwks))
    with pytest.raises(KeyConfigError, match="no HTTP client"):
        build_key_ring(AuthSettings(jwks_url="http://127.0.0.1:9/jwks.json"))


def test_ecdsa_and_rsa_fallbacks_are_never_imported() -> None:
    # docs/authentication.md: the ecdsa advisory does not apply because this never happens.
    code = (
        "import sys\n"
        "from support.authkit import ec_pair, claims, sign\n"
        "from gateway.auth.keys import pem_keys\n"
        "pair = ec_pair()\n"
        "(key,) = pem_keys(pair.public_pem, ['ES256'])\n"
        "key.verify(sign(pair.private_pem.decode(), 'ES256', claims()))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ecdsa', 'rsa')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=TESTS,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


async def test_jwks_url_must_be_http_and_plain_http_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ValueError, match="https://"):
        AuthSettings(jwks_url="file:///etc/jwks.json")
    async with httpx.AsyncClient() as client:
        _plain_http_warnings(client, caplog)


def _plain_http_warnings(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    build_key_ring(AuthSettings(jwks_url="http://idp.invalid/jwks.json"), client)
    assert "plain http" in caplog.text
    caplog.clear()
    build_key_ring(AuthSettings(jwks_url="http://127.0.0.1:9/jwks.json"), client)
    build_key_ring(AuthSettings(jwks_url="https://idp.invalid/jwks.json"), client)
    assert "plain http" not in caplog.text
