"""Bearer tokens for the benchmark's clients, minted by ``tensorgate token`` with the
servers' signing secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def mint(env: dict[str, str], subject: str, scopes: str, ttl: str = "2h") -> str:
    """A token for ``subject`` with ``scopes``, signed with the secret in ``env``."""
    exe = Path(sys.executable).with_name("tensorgate")
    minted = subprocess.run(
        [str(exe), "token", "--sub", subject, "--scope", scopes, "--ttl", ttl],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return minted.stdout.strip()
