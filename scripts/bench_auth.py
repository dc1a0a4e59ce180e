"""Time ``Authenticator.authenticate`` per algorithm; prints a Markdown table for the docs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from gateway.auth.authenticator import Authenticator
from gateway.auth.keyring import KeyRing
from gateway.auth.keys import pem_keys, secret_keys
from gateway.errors import Unauthorized

SECRET = "s" * 64


def _pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, bytes]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


async def _per_call_us(auth: Authenticator, header: str, calls: int) -> float:
    for _ in range(calls // 10):  # warm-up
        await _attempt(auth, header)
    start = time.perf_counter()
    for _ in range(calls):
        await _attempt(auth, header)
    return (time.perf_counter() - start) / calls * 1e6


async def _attempt(auth: Authenticator, header: str) -> None:
    with contextlib.suppress(Unauthorized):
        await auth.authenticate(header)


async def main(calls: int) -> None:
    """Measure and print."""
    rsa_private, rsa_public = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_private, ec_public = _pem(ec.generate_private_key(ec.SECP256R1()))
    keys = [
        *secret_keys(SECRET.encode(), ["HS256"]),
        *pem_keys(rsa_public, ["RS256"]),
        *pem_keys(ec_public, ["ES256"]),
    ]
    auth = Authenticator(KeyRing(keys))
    claims = {"sub": "bench", "scope": "models:infer", "exp": int(time.time()) + 3600}
    cases = {
        "HS256 (valid)": jwt.encode(claims, SECRET, algorithm="HS256"),
        "RS256 2048 (valid)": jwt.encode(claims, rsa_private, algorithm="RS256"),
        "ES256 P-256 (valid)": jwt.encode(claims, ec_private, algorithm="ES256"),
        "HS256 (bad signature)": jwt.encode(claims, "x" * 64, algorithm="HS256"),
        "oversized (rejected before decoding)": "x" * 9000,
    }
    print(f"`authenticate()` per call, {calls} calls each, {platform.python_version()}:\n")
    print("| token | µs per call |")
    print("|---|---|")
    for name, token in cases.items():
        print(f"| {name} | {await _per_call_us(auth, f'Bearer {token}', calls):.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    asyncio.run(main(parser.parse_args().calls))
