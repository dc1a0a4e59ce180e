"""The development secret: made once in the local state directory, reused afterwards."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gateway.auth.keys import KeyConfigError

logger = logging.getLogger(__name__)

SECRET_FILE = "dev-secret"
# 64 random bytes, base64url text: long enough for HS512, pasteable into an env var.
_SECRET_BYTES = 64


@dataclass(frozen=True)
class DevSecret:
    """The dev secret, and whether this call created it."""

    secret: SecretStr
    created: bool
    """True when the file did not exist: tokens minted elsewhere do not verify with it."""


def load_or_create_dev_secret(state_dir: Path) -> DevSecret:
    """The secret in ``state_dir/dev-secret``, created (mode 0600) if it does not exist yet."""
    path = state_dir / SECRET_FILE
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = _create(path)
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigError(f"cannot use the dev secret file {path}: {exc}") from None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise KeyConfigError(f"{path} is readable by other users; run: chmod 600 {path}")
    if len(secret) < 43:
        raise KeyConfigError(f"{path} holds no usable secret; delete it to make a new one")
    return DevSecret(SecretStr(secret), created)


def _create(path: Path) -> bool:
    """Create ``path`` with a new secret unless it exists; True if this call made it."""
    if path.exists():
        return False
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    # O_EXCL: of several workers starting at once, exactly one creates the file. Writing
    # to a temporary name first and linking it into place means nobody reads it half done.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
        try:
            os.link(temporary, path)  # fails with FileExistsError when another one won
        except FileExistsError:
            return False
        logger.info("created a development secret in %s", path)
        return True
    finally:
        temporary.unlink(missing_ok=True)
