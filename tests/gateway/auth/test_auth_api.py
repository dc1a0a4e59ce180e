"""Authentication and scopes through the HTTP API (ASGI transport, lifespan run)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import SecretStr

from gateway.api.app import create_app
from gateway.api.dependencies import METRICS_ACCESS
from gateway.settings import AuthSettings, Settings
from support.authkit import AUDIENCE, ISSUER, KeyPair, b64, claims, ec_pair, forge, rsa_pair, sign

MAX_TOKEN_BYTES = 4096
METADATA = "/v2/models/digits"
INFER = "/v2/models/digits/infer"


@dataclass(frozen=True)
class Keys:
    """Everything a case may sign with."""

    secret: str
    rsa: KeyPair
    ec: KeyPair


def _settings(
    tmp_path: Path, secret: str, public_key_file: Path, jwks_file: Path, **auth: Any
) -> Settings:
    repository = tmp_path / "empty-repository"
    repository.mkdir(exist_ok=True)
    return Settings(
        model_repository=repository,
        auth=AuthSettings(
            secret=SecretStr(secret),
            public_key_file=public_key_file,
            jwks_file=jwks_file,
            issuer=ISSUER,
            audience=AUDIENCE,
            max_token_bytes=MAX_TOKEN_BYTES,
            **auth,
        ),
    )


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def keys(secret: str, rsa_key: KeyPair, ec_key: KeyPair) -> Keys:
    """The trusted keys."""
    return Keys(secret, rsa_key, ec_key)


@pytest.fixture
async def client(
    tmp_path: Path, secret: str, public_key_file: Path, jwks_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway trusting the secret, the RSA PEM key and the EC JWKS key.

    Its repository is empty: a request that passes authentication gets 404 (no such model).
    """
    app = create_app(_settings(tmp_path, secret, public_key_file, jwks_file))
    async for c in _client(app):
        yield c


def _der_of(pair: KeyPair) -> bytes:
    public = serialization.load_pem_public_key(pair.public_pem)
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hmac_with_raw(key: bytes, payload: dict[str, object]) -> str:
    # python-jose refuses PEM as an HMAC secret; sign by hand like an attacker would.
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def _tampered(keys: Keys) -> str:
    header, _, signature = sign(keys.secret, "HS256", claims(scope="models:read")).split(".")
    payload = b64(json.dumps(claims(scope="admin models:infer")).encode())
    return f"{header}.{payload}.{signature}"


# (case, Authorization header maker, path, status, RFC 6750 error code or None)
BAD: list[tuple[str, Callable[[Keys], str | None], str, int, str | None]] = [
    ("no header", lambda k: None, METADATA, 401, None),
    ("wrong scheme", lambda k: "Basic YWxpY2U6cGFzc3dvcmQ=", METADATA, 401, "invalid_request"),
    ("empty bearer", lambda k: "Bearer ", METADATA, 401, "invalid_request"),
    ("bearer without space", lambda k: "Bearer", METADATA, 401, "invalid_request"),
    (
        "alg none",
        lambda k: "Bearer " + forge({"alg": "none"}, claims(), ""),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "alg None with a signature",
        lambda k: "Bearer " + forge({"alg": "None"}, claims(), "c2ln"),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "HS256 signed with the RSA public key PEM",
        lambda k: "Bearer " + _hmac_with_raw(k.rsa.public_pem, claims()),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "HS256 signed with the RSA public key DER",
        lambda k: "Bearer " + _hmac_with_raw(_der_of(k.rsa), claims()),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "RS256 header with an HMAC signature",
        lambda k: (
            "Bearer "
            + forge({"alg": "RS256"}, claims(), _hmac_with_raw(k.secret.encode(), claims())[-43:])
        ),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "wrong secret",
        lambda k: "Bearer " + sign("x" * 48, "HS256", claims()),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "untrusted RSA key",
        lambda k: "Bearer " + sign(rsa_pair().private_pem.decode(), "RS256", claims()),
        METADATA,
        401,
        "invalid_token",
    ),
    ("tampered payload", lambda k: "Bearer " + _tampered(k), METADATA, 401, "invalid_token"),
    (
        "expired",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(exp=1_000_000, iat=None, nbf=None)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "not yet valid",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(nbf=4_000_000_000, exp=4_000_000_600)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "issued in the future",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(iat=4_000_000_000, exp=4_000_000_600)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "wrong issuer",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(iss="https://evil.test")),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "missing issuer",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(iss=None)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "wrong audience",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(aud=["other"])),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "missing audience",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(aud=None)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "missing exp",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(exp=None)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "exp not a number",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(exp="tomorrow")),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "missing sub",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(sub=None)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "scope of the wrong type",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(scope=7)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "malformed base64",
        lambda k: "Bearer e30.e30!.c2ln",
        METADATA,
        401,
        "invalid_token",
    ),
    ("two segments", lambda k: "Bearer e30.e30", METADATA, 401, "invalid_token"),
    (
        "header not JSON",
        lambda k: "Bearer " + forge("not json", claims(), "c2ln"),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "header nested 1000 deep",
        lambda k: "Bearer " + forge("[" * 1000 + "]" * 1000, claims(), "c2ln"),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "no signature",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims()).rsplit(".", 1)[0] + ".",
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "oversized token",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(pad="x" * MAX_TOKEN_BYTES)),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "unknown kid",
        lambda k: (
            "Bearer " + sign(ec_pair().private_pem.decode(), "ES256", claims(), kid="somebody-else")
        ),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "unsupported alg PS256",
        lambda k: "Bearer " + forge({"alg": "PS256"}, claims(), "c2ln"),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "critical header extension",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(), crit=["exp"]),
        METADATA,
        401,
        "invalid_token",
    ),
    (
        "missing scope",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(scope="models:infer")),
        METADATA,
        403,
        "insufficient_scope",
    ),
    (
        "scope for another model",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(scope="models:infer:mlp")),
        INFER,
        403,
        "insufficient_scope",
    ),
    (
        "read scope on infer",
        lambda k: "Bearer " + sign(k.secret, "HS256", claims(scope="models:read")),
        INFER,
        403,
        "insufficient_scope",
    ),
]


# What each refusal must say: the case fails for the reason it was built for.
REASON = {
    "no header": "missing bearer token",
    "wrong scheme": "scheme must be Bearer",
    "empty bearer": "token is empty",
    "bearer without space": "token is empty",
    "alg none": "no signature",
    "alg None with a signature": "unsigned",
    "HS256 signed with the RSA public key PEM": "signature is invalid",
    "HS256 signed with the RSA public key DER": "signature is invalid",
    "RS256 header with an HMAC signature": "signature is invalid",
    "wrong secret": "signature is invalid",
    "untrusted RSA key": "signature is invalid",
    "tampered payload": "signature is invalid",
    "expired": "expired",
    "not yet valid": "not valid yet",
    "issued in the future": "issued in the future",
    "wrong issuer": "wrong issuer",
    "missing issuer": "no 'iss' claim",
    "wrong audience": "not for this audience",
    "missing audience": "no 'aud' claim",
    "missing exp": "no 'exp' claim",
    "exp not a number": "'exp' is not a number",
    "missing sub": "no 'sub' claim",
    "scope of the wrong type": "'scope' must be",
    "malformed base64": "not a JWT",
    "two segments": "not a JWT",
    "header not JSON": "header is not base64url-encoded JSON",
    "header nested 1000 deep": "header is not base64url-encoded JSON",
    "no signature": "no signature",
    "oversized token": "longer than the limit of 4096 bytes",
    "unknown kid": "with this key id",
    "unsupported alg PS256": "algorithm is not one of",
    "critical header extension": "critical extensions",
    "missing scope": "lacks the scope 'models:read'",
    "scope for another model": "'models:infer:digits'",
    "read scope on infer": "'models:infer:digits'",
}


def test_every_bad_case_has_a_reason() -> None:
    assert len(BAD) >= 15
    assert {case for case, *_ in BAD} == set(REASON)


@pytest.mark.parametrize(
    ("case", "make", "path", "status", "code"),
    [pytest.param(case, *rest, id=case) for case, *rest in BAD],
)
async def test_bad_tokens_are_refused(
    client: httpx.AsyncClient,
    keys: Keys,
    case: str,
    make: Callable[[Keys], str | None],
    path: str,
    status: int,
    code: str | None,
) -> None:
    header = make(keys)
    headers = {} if header is None else {"Authorization": header}
    method = "POST" if path.endswith("/infer") else "GET"
    response = await client.request(method, path, headers=headers, content=b"{}")
    assert response.status_code == status, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="tensorgate"')
    if code is None:
        assert "error=" not in challenge
    else:
        assert f'error="{code}"' in challenge
        assert "error_description=" in challenge
    assert set(response.json()) == {"error"}
    assert REASON[case] in response.json()["error"]
    # Nothing of the token or the keys comes back.
    token = (header or "").removeprefix("Bearer ")
    for secret_text in (token, keys.secret):
        if len(secret_text) > 8:
            assert secret_text not in response.text
            assert secret_text not in challenge


GOOD: list[tuple[str, Callable[[Keys], str], str]] = [
    ("HS256 secret", lambda k: sign(k.secret, "HS256", claims()), METADATA),
    ("RS256 PEM key", lambda k: sign(k.rsa.private_pem.decode(), "RS256", claims()), METADATA),
    (
        "ES256 JWKS key by kid",
        lambda k: sign(k.ec.private_pem.decode(), "ES256", claims(), kid="ec-1"),
        METADATA,
    ),
    (
        "scp list",
        lambda k: sign(k.secret, "HS256", claims(scope=None, scp=["models:read"])),
        METADATA,
    ),
    (
        "within leeway",
        lambda k: sign(k.secret, "HS256", claims(exp=int(time.time()) - 5)),
        METADATA,
    ),
    (
        "per-model infer scope",
        lambda k: sign(k.secret, "HS256", claims(scope="models:infer:digits")),
        INFER,
    ),
    (
        "any-model infer scope",
        lambda k: sign(k.secret, "HS256", claims(scope="models:infer")),
        INFER,
    ),
    (
        "audience in a list",
        lambda k: sign(k.secret, "HS256", claims(aud=["x", AUDIENCE])),
        METADATA,
    ),
]


@pytest.mark.parametrize(
    ("make", "path"), [pytest.param(make, path, id=case) for case, make, path in GOOD]
)
async def test_good_tokens_pass(
    client: httpx.AsyncClient, keys: Keys, make: Callable[[Keys], str], path: str
) -> None:
    method = "POST" if path.endswith("/infer") else "GET"
    response = await client.request(
        method, path, headers={"Authorization": f"Bearer {make(keys)}"}, content=b"{}"
    )
    # The repository is empty: getting as far as "no such model" means auth let it through.
    assert response.status_code == 404, response.text
    assert "digits" in response.json()["error"]


@pytest.mark.parametrize("path", ["/v2", "/v2/health/live", "/docs", "/openapi.json"])
async def test_public_routes_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_unknown_routes_stay_404_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/no/such/route")
    assert response.status_code == 404
    assert (await client.delete("/v2/health/live")).status_code == 405


async def test_repository_index_needs_models_read(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await client.post("/v2/repository/index")).status_code == 401
    token = sign(keys.secret, "HS256", claims(scope="models:read"))
    response = await client.post(
        "/v2/repository/index", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json() == []


async def test_subject_is_logged_never_the_token(
    client: httpx.AsyncClient,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    token = sign(keys.secret, "HS256", claims(sub="carol"))
    with caplog.at_level(logging.DEBUG):
        await client.get(METADATA, headers={"Authorization": f"Bearer {token}"})
        await client.get(METADATA, headers={"Authorization": f"Bearer {token}x"})
    await asyncio.sleep(0)  # one loop turn: the access log writes its lines at its end
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [(line["path"], line["subject"]) for line in lines] == [
        (METADATA, "carol"),
        (METADATA, None),
    ]
    assert lines[1]["status"] == 401
    assert lines[1]["error"]
    everything = caplog.text + json.dumps(lines)
    assert token not in everything
    assert keys.secret not in everything


def test_openapi_declares_bearer_scheme_and_scopes(
    tmp_path: Path, secret: str, public_key_file: Path, jwks_file: Path
) -> None:
    document = create_app(_settings(tmp_path, secret, public_key_file, jwks_file)).openapi()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    operations = {
        op["operationId"]: op for item in document["paths"].values() for op in item.values()
    }
    assert operations["model_metadata"]["security"] == [{"bearerAuth": ["models:read"]}]
    assert operations["repository_index"]["security"] == [{"bearerAuth": ["models:read"]}]
    assert operations["model_infer"]["security"] == [
        {"bearerAuth": ["models:infer"]},
        {"bearerAuth": ["models:infer:{model_name}"]},
    ]
    assert "401" in operations["model_infer"]["responses"]
    assert "403" in operations["model_infer"]["responses"]
    for public in ("server_live", "server_ready", "server_metadata"):
        assert "security" not in operations[public]


async def test_protect_docs_needs_a_token(
    tmp_path: Path, keys: Keys, public_key_file: Path, jwks_file: Path
) -> None:
    settings = _settings(tmp_path, keys.secret, public_key_file, jwks_file, protect_docs=True)
    token = sign(keys.secret, "HS256", claims(scope=""))
    async for client in _client(create_app(settings)):
        for path in ("/docs", "/openapi.json"):
            assert (await client.get(path)).status_code == 401
            ok = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
        assert (await client.get("/v2/health/live")).status_code == 200


@pytest.mark.parametrize("protect", [False, True])
async def test_metrics_access_follows_the_setting(
    tmp_path: Path, keys: Keys, public_key_file: Path, jwks_file: Path, protect: bool
) -> None:
    settings = _settings(tmp_path, keys.secret, public_key_file, jwks_file, protect_metrics=protect)
    app = create_app(settings)

    async def metrics() -> dict[str, str]:
        return {"metrics": "here"}

    # The /metrics route itself comes with the metrics issue; attach the guard like it will.
    app.add_api_route("/metrics", metrics, dependencies=[METRICS_ACCESS])
    reader = sign(keys.secret, "HS256", claims(scope="metrics:read"))
    other = sign(keys.secret, "HS256", claims(scope="models:read"))
    async for client in _client(app):
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == (401 if protect else 200)
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {other}"})
        assert wrong.status_code == (403 if protect else 200)
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert right.status_code == 200


async def test_disabled_auth_opens_routes_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    settings = Settings(model_repository=repository, auth=AuthSettings(enabled=False))
    with caplog.at_level(logging.WARNING, logger="gateway"):
        async for client in _client(create_app(settings)):
            assert (await client.get(METADATA)).status_code == 404
            assert (await client.post("/v2/repository/index")).status_code == 200
    assert "AUTHENTICATION IS DISABLED" in caplog.text


async def test_no_key_configured_refuses_everything(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    token = sign(keys.secret, "HS256", claims())
    with caplog.at_level(logging.ERROR, logger="gateway"):
        async for client in _client(create_app(Settings(model_repository=repository))):
            response = await client.get(METADATA, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
    assert "no token verification key is configured" in caplog.text
