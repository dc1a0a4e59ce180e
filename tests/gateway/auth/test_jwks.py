"""JWKS from a real local HTTP server: caching, key rotation, rate-limited refetches."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.auth.authenticator import Authenticator
from gateway.auth.jwks import RemoteJwks
from gateway.auth.keyring import KeyRing
from gateway.errors import Unauthorized
from gateway.settings import AuthSettings, Settings
from support.authkit import KeyPair, claims, ec_pair, rsa_pair, sign

INTERVAL_S = 60.0


class JwksServer:
    """Serves a key set that the test swaps; counts requests; can fail on demand."""

    def __init__(self) -> None:
        self.document: dict[str, object] = {"keys": []}
        self.status = 200
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def publish(self, *pairs: KeyPair) -> None:
        """Serve exactly these public keys from now on."""
        self.document = {"keys": [pair.public_jwk() for pair in pairs]}


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """A JWKS server on a free loopback port, stopped after the test."""
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client the key ring fetches with."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def _bearer(pair: KeyPair) -> str:
    return "Bearer " + sign(pair.private_pem.decode(), pair.algorithm, claims(), kid=pair.kid)


async def test_rotation_and_rate_limited_refresh(
    jwks_server: JwksServer, http: httpx.AsyncClient
) -> None:
    old, new = rsa_pair("2025"), ec_pair("2026")
    jwks_server.publish(old)
    clock = Clock()
    remote = RemoteJwks(
        jwks_server.url, ["RS256", "ES256"], http, min_refresh_interval_s=INTERVAL_S, clock=clock
    )
    auth = Authenticator(KeyRing([], remote))
    await remote.refresh()
    assert jwks_server.requests == 1

    assert (await auth.authenticate(_bearer(old))).subject == "alice"
    assert jwks_server.requests == 1  # served from the cache

    # The issuer rotates; within the interval the new kid is not fetched for.
    jwks_server.publish(new)
    clock.now += 1
    with pytest.raises(Unauthorized, match="key id"):
        await auth.authenticate(_bearer(new))
    assert jwks_server.requests == 1

    # After the interval, the unknown kid triggers exactly one refetch.
    clock.now += INTERVAL_S
    assert (await auth.authenticate(_bearer(new))).subject == "alice"
    assert jwks_server.requests == 2

    # The retired key no longer verifies, and a flood of unknown kids fetches nothing.
    forged = [_bearer(ec_pair(f"random-{i}")) for i in range(20)] + [_bearer(old)]
    results = await asyncio.gather(
        *(auth.authenticate(header) for header in forged), return_exceptions=True
    )
    assert all(isinstance(result, Unauthorized) for result in results)
    assert jwks_server.requests == 2


async def test_concurrent_misses_share_one_fetch(
    jwks_server: JwksServer, http: httpx.AsyncClient
) -> None:
    pair = ec_pair("k1")
    jwks_server.publish(pair)
    remote = RemoteJwks(jwks_server.url, ["ES256"], http, min_refresh_interval_s=INTERVAL_S)
    auth = Authenticator(KeyRing([], remote))
    results = await asyncio.gather(*(auth.authenticate(_bearer(pair)) for _ in range(10)))
    assert {principal.subject for principal in results} == {"alice"}
    assert jwks_server.requests == 1


async def test_failed_fetch_keeps_the_old_keys(
    jwks_server: JwksServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    pair = rsa_pair("k1")
    jwks_server.publish(pair)
    clock = Clock()
    remote = RemoteJwks(
        jwks_server.url, ["RS256"], http, min_refresh_interval_s=INTERVAL_S, clock=clock
    )
    await remote.refresh()
    jwks_server.status = 500
    clock.now += INTERVAL_S
    await remote.refresh()
    assert jwks_server.requests == 2
    assert "HTTP 500" in caplog.text
    auth = Authenticator(KeyRing([], remote))
    assert (await auth.authenticate(_bearer(pair))).subject == "alice"


async def test_app_fetches_jwks_url_at_startup(jwks_server: JwksServer, tmp_path: Path) -> None:
    pair = ec_pair("k1")
    jwks_server.publish(pair)
    repository = tmp_path / "repo"
    repository.mkdir()
    settings = Settings(model_repository=repository, auth=AuthSettings(jwks_url=jwks_server.url))
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        assert jwks_server.requests == 1
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/v2/repository/index", headers={"Authorization": _bearer(pair)}
            )
    assert response.status_code == 200
