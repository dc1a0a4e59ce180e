"""HTTPS and mutual TLS on a real ``tensorgate serve``, with certificates made here."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS, TENSORGATE
from support.pki import Pki, make_pki
from support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _env(pki: Pki, *, mutual: bool) -> dict[str, str]:
    env = {
        "TENSORGATE_AUTH__SECRET": TEST_SECRET,
        "TENSORGATE_TLS__CERTFILE": str(pki.server_cert),
        "TENSORGATE_TLS__KEYFILE": str(pki.server_key),
    }
    if mutual:
        env["TENSORGATE_TLS__CLIENT_CA"] = str(pki.ca)
    return env


def test_a_self_signed_server_answers_over_https(pki: Pki, tmp_path: Path) -> None:
    with ServerProcess(["--models", str(DEMO_MODELS)], _env(pki, mutual=False)) as server:
        assert server.base_url.startswith("https://")
        headers = {"Authorization": bearer(make_settings(tmp_path))}
        trust = ssl.create_default_context(cafile=str(pki.ca))
        with httpx.Client(base_url=server.base_url, verify=trust, headers=headers) as https:
            assert https.get("/v2/health/ready").status_code == 200
            answer = https.post("/v2/models/digits/infer", json=BODY)
            assert answer.status_code == 200
            assert answer.json()["model_name"] == "digits"
        plain = server.base_url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on a TLS port
            httpx.get(f"{plain}/v2/health/live", timeout=10)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            httpx.get(f"{server.base_url}/v2/health/live", timeout=10)


def test_mutual_tls_requires_a_client_certificate(pki: Pki) -> None:
    with ServerProcess(["--models", str(DEMO_MODELS)], _env(pki, mutual=True)) as server:
        anonymous = ssl.create_default_context(cafile=str(pki.ca))
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.base_url}/v2/health/live", verify=anonymous, timeout=10)
        known = ssl.create_default_context(cafile=str(pki.ca))
        known.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        answer = httpx.get(f"{server.base_url}/v2/health/live", verify=known, timeout=10)
        assert answer.status_code == 200


def test_a_key_that_does_not_match_stops_serve_with_status_2(pki: Pki) -> None:
    env = {**os.environ, **_env(pki, mutual=False), "TENSORGATE_TLS__KEYFILE": str(pki.client_key)}
    done = subprocess.run(
        [str(TENSORGATE), "serve", "--models", str(DEMO_MODELS), "--port", "0", "--grpc-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert (
        f"TLS settings: tls.keyfile (--tls-key, TENSORGATE_TLS__KEYFILE): {pki.client_key} "
        f"is not the key of the certificate in tls.certfile {pki.server_cert}"
    ) in done.stderr
    assert "Traceback" not in done.stderr
