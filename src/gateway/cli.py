"""The ``tensorgate`` command: ``serve`` (one or more workers), ``token`` and ``openapi``."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.auth.dev_secret import SECRET_FILE, load_or_create_dev_secret
from gateway.auth.keyring import static_keys
from gateway.auth.keys import KeyConfigError
from gateway.auth.minting import mint_token, parse_duration, signing_key
from gateway.auth.principal import ADMIN, MODELS_INFER, MODELS_READ
from gateway.limits.redis_client import RedisConfigError, redis_password
from gateway.log_safety import configure_logging
from gateway.repository.config import config_json_schema
from gateway.serving.tls import TlsFileError, check_tls
from gateway.settings import Settings

logger = logging.getLogger("gateway")

TERMINAL = Path("/dev/tty")
DEV_TOKEN_FILE = "dev-token"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorgate", description="An async inference gateway for ONNX models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a model repository over HTTP")
    serve.add_argument(
        "--model-repository", "--models", type=Path, help="model repository (default: models)"
    )
    serve.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--grpc-port", type=int, help="port of the gRPC service, 0 turns it off (default: 8001)"
    )
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument(
        "--workers",
        type=_workers,
        help="worker processes, or auto: one per CPU this process may use (default: auto)",
    )
    serve.add_argument(
        "--http",
        dest="http_protocol",
        choices=["coalescing", "httptools", "h11"],
        help="HTTP implementation (default: coalescing, docs/configuration.md)",
    )
    serve.add_argument(
        "--repository-poll-s",
        type=float,
        metavar="SECONDS",
        help="watch the model repository for changes every SECONDS (default: off)",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-client-ca", type=Path, help="PEM CA bundle: require client certificates (mTLS)"
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="turn authentication OFF: every route open to anyone (logs a warning)",
    )
    token = commands.add_parser("token", help="mint a JWT with the configured signing key")
    token.add_argument("--sub", default="dev", help="subject: who the token is for (default: dev)")
    token.add_argument(
        "--scope",
        default=f"{MODELS_READ} {MODELS_INFER}",
        help=f"space-separated scopes (default: '{MODELS_READ} {MODELS_INFER}')",
    )
    token.add_argument(
        "--ttl", type=_duration, default=3600, help="lifetime such as 90s, 15m, 1h, 7d (default 1h)"
    )
    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument(
        "--model-repository", "--models", type=Path, help="model repository (default: models)"
    )
    openapi.add_argument("--output", "-o", type=Path, help="write to a file instead of stdout")
    config_schema = commands.add_parser(
        "config-schema", help="print the JSON Schema of a model's config.yaml"
    )
    config_schema.add_argument(
        "--output", "-o", type=Path, help="write to a file instead of stdout"
    )
    return parser


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'auto'") from None


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: value
        for key in (
            "model_repository",
            "host",
            "port",
            "log_level",
            "workers",
            "http_protocol",
            "repository_poll_s",
        )
        if (value := getattr(args, key, None)) is not None
    }
    tls = {
        key: value
        for key, flag in (
            ("certfile", "tls_cert"),
            ("keyfile", "tls_key"),
            ("client_ca", "tls_client_ca"),
        )
        if (value := getattr(args, flag, None)) is not None
    }
    if tls:
        overrides["tls"] = {**Settings().tls.model_dump(exclude_none=True), **tls}
    if getattr(args, "grpc_port", None) is not None:
        overrides["grpc"] = {
            **Settings().grpc.model_dump(exclude_none=True),
            "port": args.grpc_port,
        }
    settings = Settings(**overrides)
    if getattr(args, "no_auth", False):
        settings = _with_auth(settings, enabled=False)
    return settings


def _with_auth(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"auth": settings.auth.model_copy(update=changes)})


def _with_dev_secret(settings: Settings) -> tuple[Settings, bool]:
    """Settings with the dev secret filled in when auth is on and no key is configured,
    and whether that secret was created just now."""
    if not settings.auth.enabled or settings.auth.has_key:
        return settings, False
    dev = load_or_create_dev_secret(settings.auth.state_dir)
    return _with_auth(settings, secret=dev.secret), dev.created


def _serve(settings: Settings) -> int:
    from gateway.serving.port_check import PortInUse, check_port_free
    from gateway.serving.run import run_server

    if not settings.model_repository.is_dir():
        logger.error("model repository %s does not exist", settings.model_repository)
        return 2
    dev_mode = settings.auth.enabled and not settings.auth.has_key
    try:
        settings, _ = _with_dev_secret(settings)
        if settings.auth.enabled:
            static_keys(settings.auth)  # fail now, with a clear message, on a bad key
    except KeyConfigError as exc:
        logger.error("authentication settings: %s", exc)
        return 2
    try:
        check_tls(settings.tls)
    except TlsFileError as exc:
        logger.error("TLS settings: %s", exc)
        return 2
    try:
        redis_password(settings.limits.redis)  # an unreadable password file fails now
    except RedisConfigError as exc:
        logger.error("limits settings: %s", exc)
        return 2
    if settings.grpc.port:
        try:
            check_port_free(settings.host, settings.grpc.port, "grpc.port")
        except PortInUse as exc:
            logger.error("gRPC: %s", exc)
            return 2
    run_server(settings, functools.partial(_announce, settings, dev_mode))
    return 0


def base_url(settings: Settings, port: int) -> str:
    """The server's address as a client types it, with the port actually bound."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{'https' if settings.tls.enabled else 'http'}://{host}:{port}"


def _announce(settings: Settings, dev_mode: bool, port: int) -> None:
    """Once the port is bound: log where the server listens; in dev mode, show a token."""
    base = base_url(settings, port)
    logger.info(
        "tensorgate serving %s on %s (Swagger UI: %s/docs)", settings.model_repository, base, base
    )
    if dev_mode:
        if settings.host not in ("127.0.0.1", "::1", "localhost"):
            logger.warning(
                "dev mode (a generated secret) on %s: configure auth.jwks_url or auth.secret "
                "before exposing the gateway beyond this machine",
                settings.host,
            )
        _show_dev_token(settings, base)


def _write_json(document: Any, output: Path | None) -> int:
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    else:
        output.write_bytes(text)
    return 0


def _show_dev_token(settings: Settings, base: str) -> None:
    auth = settings.auth
    token = mint_token(
        signing_key(auth),
        subject="dev",
        scopes=[MODELS_READ, MODELS_INFER, ADMIN],
        ttl_s=auth.dev_token_ttl_s,
        issuer=auth.issuer,
        audience=auth.audience,
    )
    minutes = auth.dev_token_ttl_s // 60
    banner = dev_banner(auth.state_dir, base, token, minutes)
    where = deliver_dev_token(token, banner, auth.state_dir)
    if where == TERMINAL:
        logger.info("dev mode: an admin token was written to the terminal")
    else:
        logger.warning(
            "dev mode: no terminal; an admin token (valid %d min) is in %s (mode 0600): "
            "TOKEN=$(cat %s), or paste it in Swagger UI's Authorize at %s/docs",
            minutes,
            where,
            where,
            base,
        )


def dev_banner(state_dir: Path, base: str, token: str, minutes: int) -> str:
    """What a person at the terminal reads: where the secret is, Swagger UI, the token."""
    return (
        f"\nDev mode: tokens are signed with the secret in {state_dir / SECRET_FILE}.\n"
        f"Open {base}/docs, click Authorize and paste this token (valid {minutes} min):\n\n"
        f"{token}\n\n"
        "More tokens: tensorgate token --sub NAME --scope 'models:read models:infer' --ttl 1h\n\n"
    )


def deliver_dev_token(token: str, banner: str, state_dir: Path, terminal: Path = TERMINAL) -> Path:
    """Show the dev token where a person sees it but no log does; return where it went.

    stderr is where the logs go, so the banner (which holds the token) goes to the
    controlling terminal when there is one; else (a service, a container, a pipe) the
    token alone goes to ``<state_dir>/dev-token``, mode 0600, so that
    ``TOKEN=$(cat <state_dir>/dev-token)`` works.
    """
    try:
        fd = os.open(terminal, os.O_WRONLY | os.O_NOCTTY)
    except OSError:  # no controlling terminal (ENXIO), or none on this platform
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = state_dir / DEV_TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file may have been made with other permissions
        with os.fdopen(fd, "w") as sink:
            sink.write(token + "\n")
        return path
    with os.fdopen(fd, "w") as sink:
        sink.write(banner)
    return terminal


def _token(settings: Settings, args: argparse.Namespace) -> int:
    try:
        # Minting needs no running server: auth.enabled does not matter here.
        with_secret, created = _with_dev_secret(_with_auth(settings, enabled=True))
        auth = with_secret.auth
        key = signing_key(auth)
    except KeyConfigError as exc:
        sys.stderr.write(f"tensorgate token: {exc}\n")
        return 2
    if created:
        sys.stderr.write(_new_secret_warning(auth.state_dir))
    token = mint_token(
        key,
        subject=args.sub,
        scopes=args.scope.split(),
        ttl_s=args.ttl,
        issuer=auth.issuer,
        audience=auth.audience,
    )
    sys.stdout.write(token + "\n")
    return 0


def _new_secret_warning(state_dir: Path) -> str:
    """Said when ``token`` made the dev secret: a server started elsewhere has its own."""
    where = state_dir.absolute()
    return (
        f"tensorgate token: warning: created a new dev secret in {where / SECRET_FILE}, as "
        "no signing key is configured and there was none yet. A server started in another "
        "directory (another auth.state_dir) signs with its own secret and answers this "
        "token 401 'token signature is invalid': run tensorgate token in the directory the "
        "server was started in, or set TENSORGATE_AUTH__STATE_DIR to its state directory.\n"
    )


def _openapi(settings: Settings, output: Path | None) -> int:
    import asyncio

    from gateway.api.openapi_export import export_openapi

    return _write_json(asyncio.run(export_openapi(settings)), output)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        sys.stderr.write(f"tensorgate: invalid settings: {exc}\n")
        return 2
    configure_logging(settings.log_level)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "config-schema":
        return _write_json(config_json_schema(), args.output)
    if args.command == "token":
        return _token(settings, args)
    return _openapi(settings, args.output)


if __name__ == "__main__":
    sys.exit(main())
