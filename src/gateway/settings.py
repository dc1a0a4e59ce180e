"""Gateway settings from ``TENSORGATE_*`` environment variables and CLI flags."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.listener_settings import GrpcSettings, TlsSettings

MIB = 1024 * 1024

HttpProtocol = Literal["coalescing", "httptools", "h11"]
DisconnectWatchKind = Literal["stepped", "task"]
HmacAlgorithm = Literal["HS256", "HS384", "HS512"]
PublicKeyAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]


class AuthSettings(BaseModel):
    """JWT authentication; docs/authentication.md explains dev mode and production."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    enabled: bool = True
    """Check a JWT on every protected route; false opens everything (a warning on each start)."""
    secret: SecretStr | None = None
    """Shared HMAC secret (at least as many bytes as the hash: 32 for HS256)."""
    secret_algorithms: Annotated[tuple[HmacAlgorithm, ...], Field(min_length=1)] = ("HS256",)
    """Algorithms accepted with ``secret``; the first one signs ``tensorgate token``."""
    public_key_file: Path | None = None
    """PEM file with an RSA or EC public key (or certificate) that verifies tokens."""
    private_key_file: Path | None = None
    """PEM file with an RSA or EC private key: ``tensorgate token`` signs with it, and its
    public half verifies tokens when no other key is configured."""
    public_key_algorithms: Annotated[tuple[PublicKeyAlgorithm, ...], Field(min_length=1)] = (
        "RS256",
        "ES256",
    )
    """Algorithms accepted with the PEM key; the key's type must fit one of them."""
    jwks_file: Path | None = None
    """Local JSON Web Key Set file with the identity provider's public keys."""
    jwks_url: str | None = None
    """URL of the identity provider's JSON Web Key Set, fetched with HTTP GET and cached."""
    jwks_algorithms: Annotated[tuple[PublicKeyAlgorithm, ...], Field(min_length=1)] = (
        "RS256",
        "ES256",
    )
    """Algorithms accepted with JWKS keys; keys whose ``alg`` is not listed are ignored."""
    jwks_refresh_min_interval_s: Annotated[float, Field(ge=0)] = 60.0
    """Least time between two JWKS fetches; an unknown ``kid`` refetches at most this often."""
    jwks_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    """Time limit of one JWKS fetch."""
    issuer: str | None = None
    """Required ``iss`` claim; set it in production (tokens without it are refused)."""
    audience: str | None = None
    """Required ``aud`` claim (one of its values); set it in production."""
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew tolerated when checking ``exp``, ``nbf`` and ``iat``."""
    max_token_bytes: Annotated[int, Field(ge=256, le=65536)] = 8192
    """Longest bearer token read; longer ones are refused before any decoding."""
    verified_token_cache_s: Annotated[float, Field(ge=0, le=300)] = 60.0
    """How long a token whose signature verified is remembered, so that repeated calls
    with it skip the signature check (its time, issuer and audience rules are still
    applied on every call); 0 turns the cache off."""
    protect_docs: bool = False
    """Require a valid token for ``/docs`` and ``/openapi.json`` (public by default)."""
    protect_metrics: bool = False
    """Require a token with the ``metrics:read`` scope for ``/metrics`` (public by default)."""
    state_dir: Path = Path(".tensorgate")
    """Local state directory: ``serve`` keeps the generated dev secret here (mode 0600)."""
    dev_token_ttl_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600
    """Lifetime of the ready-to-paste token ``serve`` prints in dev mode."""

    @field_validator("jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("auth.jwks_url must be an https:// (or http://) URL")
        return value

    @property
    def has_key(self) -> bool:
        """Whether any verification key is configured."""
        return any(
            value is not None
            for value in (
                self.secret,
                self.public_key_file,
                self.private_key_file,
                self.jwks_file,
                self.jwks_url,
            )
        )


class FairShareSettings(BaseModel):
    """How a contended server shares its capacity between callers: equal shares per token
    subject by default (docs/operations.md#fair-share)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    enabled: bool = True
    """Share by caller; false: first come, first served."""
    key: Annotated[str, Field(pattern=r"^(subject|claim:[^\s]+)$")] = "subject"
    """Who shares: ``subject`` (each token subject) or ``claim:<name>`` (each value of that
    claim, e.g. ``claim:tenant``; a token without it shares as its subject)."""
    weights: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(default_factory=dict)
    """Weight of a key value (a subject, or a claim value); others weigh 1. A caller with
    weight 2 gets twice the share of one with weight 1 when both want more."""
    weight_claim: str | None = None
    """A numeric claim carrying the caller's weight (0.001 to 1000), read when the key
    value has no entry in ``weights``."""
    loop_concurrency: Annotated[int, Field(ge=2, le=100_000)] | Literal["auto"] = "auto"
    """Requests in progress in the server (with ``--workers N``, all workers together)
    beyond which, with two callers or more, a caller over its share of them has its
    connections' next requests left unread until it is back under its share (each
    caller's share: this times its weight over the callers' total); ``auto``: 4 per
    worker process (one process: 4, ``--workers 2``: 8)."""
    workers_view_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    """With ``--workers N``: how often each worker sends the others its requests in
    progress per caller, so that shares are the server's rather than each process's (a
    worker's view counts for at most 200 times this, at least 1 s, and not at all once
    that worker died); 0: shares per process."""


RuleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
"""A limit rule's name, a metrics label and the policy name of the 429's headers: a
lower-case letter, then up to 31 lower-case letters, digits, ``_`` or ``-``."""
_CLAIM_KEY = re.compile(r"^claim:[A-Za-z0-9_.:-]{1,64}$")


class LimitMatch(BaseModel):
    """Which callers a limit rule applies to: all the conditions given (none: everyone)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    scopes: tuple[str, ...] = ()
    """The caller holds at least one of these scopes (as written in its token)."""
    claims: dict[str, str | list[str]] = Field(default_factory=dict)
    """The caller's token has each of these claims, equal to the value (or one of the list)."""
    models: tuple[str, ...] = ()
    """Server-wide rules only: the request is for one of these models (none: any model)."""


class LimitRule(BaseModel):
    """One limit: who it applies to, what one bucket is kept per, and its limits
    (docs/limits.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    name: RuleName
    """Names the rule in metrics, logs, the 429's message and its ``RateLimit`` headers."""
    key: str = "subject"
    """What one bucket is kept per: ``subject`` (the token's ``sub``), ``claim:<name>``
    (each value of that claim: ``claim:tenant``; a token without it is not limited by this
    rule) or ``shared`` (one bucket for every caller the rule applies to)."""
    match: LimitMatch = Field(default_factory=LimitMatch)
    """Which callers the rule applies to (default: every caller)."""
    rate_per_s: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    """Requests per second a bucket refills at (``0.5``: one every two seconds)."""
    burst: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Requests a full bucket lets through at once; default: ``rate_per_s`` rounded up."""
    concurrency: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Requests in flight at once per bucket (from the check to the answer)."""

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: str) -> str:
        if key in ("subject", "shared") or _CLAIM_KEY.match(key):
            return key
        raise ValueError(
            f"key '{key[:80]}' is none of subject, shared, claim:<name> (letters, digits, _ . : -)"
        )

    @model_validator(mode="after")
    def _some_limit(self) -> LimitRule:
        if self.rate_per_s is None and self.concurrency is None:
            raise ValueError(f"rule '{self.name}' sets neither rate_per_s nor concurrency")
        if self.burst is not None and self.rate_per_s is None:
            raise ValueError(f"rule '{self.name}': burst needs rate_per_s")
        return self

    @property
    def bucket_size(self) -> int:
        """The burst: as set, else ``rate_per_s`` rounded up (at least 1)."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate_per_s or 1))


def unique_rule_names(rules: list[LimitRule]) -> list[LimitRule]:
    """``rules`` when no two share a name (metrics and headers name rules); else an error."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"two rules are named '{rule.name}': names must be unique")
        seen.add(rule.name)
    return rules


class RedisSettings(BaseModel):
    """Where the limits keep their shared buckets, so that they hold for every worker and
    replica together (docs/limits.md#several-workers-and-replicas); no URL: each process
    keeps an even share."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    url: str | None = None
    """``redis://host:6379/0``, ``rediss://`` (TLS) or ``unix:///path``; a user name may be
    in it (``redis://user@host``), never a password."""
    password: SecretStr | None = None
    """Password (``TENSORGATE_LIMITS__REDIS__PASSWORD``); or ``password_file``."""
    password_file: Path | None = None
    """File holding the password (trailing newline ignored): a Compose or Kubernetes secret."""
    tls_ca_file: Path | None = None
    """PEM bundle of the CAs that sign the Redis server's certificate (``rediss://``)."""
    tls_certfile: Path | None = None
    """PEM client certificate, when Redis requires one (``rediss://``)."""
    tls_keyfile: Path | None = None
    """PEM private key of ``tls_certfile``."""
    timeout_ms: Annotated[float, Field(gt=0, le=10_000)] = 50.0
    """Time limit of one Redis operation (connecting included); past it the limits fall
    back to each process's even share, as when Redis is down."""
    retry_after_failure_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    """After a failed operation, how long each process keeps to its even share before it
    asks Redis again."""
    lease_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.05
    """Tokens a process takes from a shared bucket in one round trip, as a fraction of the
    bucket's burst (at least 1): larger saves round trips, smaller holds the limit closer."""
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "tensorgate"
    """Prefix of every key the limits write (several gateways may share one Redis)."""

    @model_validator(mode="after")
    def _coherent(self) -> RedisSettings:
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("limits.redis.url must start with redis://, rediss:// or unix://")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set limits.redis.password or limits.redis.password_file, not both")
        tls_files = (self.tls_ca_file, self.tls_certfile, self.tls_keyfile)
        if any(tls_files) and not (self.url or "").startswith("rediss://"):
            raise ValueError("limits.redis.tls_* files need a rediss:// URL")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("limits.redis.tls_certfile and tls_keyfile go together")
        return self


class LimitsSettings(BaseModel):
    """Request-rate and concurrency limits per caller or group (docs/limits.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    rules: list[LimitRule] = Field(default_factory=list)
    """Server-wide rules, checked on every inference request after a model's own rules
    (``TENSORGATE_LIMITS__RULES`` as a JSON list); none: no limit."""
    redis: RedisSettings = Field(default_factory=RedisSettings)
    """Shared buckets in Redis (``TENSORGATE_LIMITS__REDIS__*``)."""
    max_keys: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    """Buckets one process keeps; past it those already refilled are dropped (no loss),
    then the fullest others (those callers start again from a full bucket, logged)."""

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[LimitRule]) -> list[LimitRule]:
        return unique_rule_names(rules)


class SharedMemorySettings(BaseModel):
    """Triton's system shared-memory extension (docs/protocol.md#shared-memory)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    system: bool = True
    """Callers on this host may register POSIX shared-memory objects (``/dev/shm``) and
    name them for tensors; off: every registration is refused."""
    max_regions: Annotated[int, Field(ge=1, le=4096)] = 64
    """The most regions one token subject may hold at once."""
    max_regions_total: Annotated[int, Field(ge=1, le=65536)] = 1024
    """The most regions the server holds at once, all subjects together."""


class Settings(BaseSettings):
    """Every setting of the gateway; docs/configuration.md documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="TENSORGATE_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
    )

    model_repository: Path = Path("models")
    """Directory holding ``<name>/<version>/model.onnx`` (and optional ``config.yaml``)."""
    host: str = "127.0.0.1"
    """Address ``tensorgate serve`` binds to."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """Port ``tensorgate serve`` listens on."""
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    """Worker processes of ``tensorgate serve``: ``auto`` (one per CPU this process may
    use: its CPU affinity and its cgroup's CPU quota, rounded up, at most 64) or a number.
    Each loads every model and has its own batchers; they serve as one server: repository
    changes reach every worker, statistics and /metrics count all of them."""
    workers_sync_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    """With several workers, how long a repository change (load, unload) waits for the
    other workers to apply it, and a statistics query for their counts; past it the call
    answers 500 naming the workers that did not answer."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the gateway and of uvicorn."""
    max_request_body_bytes: Annotated[int, Field(ge=1024)] = 16 * MIB
    """Largest request body accepted; larger ones get 413 before (or while) being read."""
    http_protocol: HttpProtocol = "coalescing"
    """HTTP implementation of ``tensorgate serve``: ``coalescing`` (uvicorn's httptools
    protocol, each response sent in one socket write: the fastest, docs/configuration.md
    has the figures), ``httptools`` (the same with one write per part) or uvicorn's own
    ``h11`` (without most connection limits, docs/operations.md)."""
    disconnect_watch: DisconnectWatchKind = "stepped"
    """How an inference request hears its client leave: ``stepped`` (steps uvicorn's
    ``receive()`` by hand, the fastest) or ``task`` (a plain asyncio Task per request)."""
    refusal_pacing_max_ms: Annotated[float, Field(ge=0, le=10_000)] = 100.0
    """A 503 for a full queue is sent after the queue's estimated drain time (the precise
    value behind ``Retry-After``), at most this long, so a client that resends at once
    cannot spin on refusals and starve the model; 0 sends it at once."""
    metrics_tally: bool = True
    """Count each request's metrics in plain Python and add them to the Prometheus
    collectors once per event-loop turn (``gateway.tally``: the same samples, a tenth less
    Python per request); false observes every request directly (docs/configuration.md)."""
    json_slicing: bool = True
    """Decode the tensors of a large JSON inference body in slices, giving the event loop
    back between them, so that other requests are answered meanwhile
    (docs/protocol.md#large-json-bodies); false: every body is decoded in one go."""
    json_slicing_min_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    """A JSON inference body longer than this is decoded in slices (with ``json_slicing``
    on); shorter ones take the usual path, unchanged."""
    json_slice_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    """About how much of a tensor's JSON text is decoded between two turns of the event
    loop (about half a millisecond of work per 64 KiB on the development machine)."""
    access_log: bool = True
    """One line per request on standard output (docs/operations.md#access-log)."""
    access_log_format: Literal["auto", "json", "text"] = "auto"
    """``json`` (one object per line), ``text`` (one readable line), or ``auto``: text
    when standard output is a terminal, JSON otherwise."""
    readiness_requires_all_models: bool = True
    """Server readiness needs every model in the repository ready (a model is ready when
    one of its versions is); false: any one model ready."""
    repository_poll_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    """Watch the model repository, every this many seconds, and load, reload and unload
    model versions as their files change (acted on once unchanged across two polls);
    none (the default): the repository changes only through the repository API."""
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Time a connection has to deliver a request's headers once it opens or the request
    starts; past it the connection is answered 408 and closed (docs/operations.md)."""
    body_idle_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """Longest gap between two pieces of a request body; a body that stops arriving is cut
    (an idle gap: slow but steady uploads pass)."""
    keep_alive_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    """How long an idle keep-alive connection is kept open between two requests."""
    max_header_bytes: Annotated[int, Field(ge=4096)] = 64 * 1024
    """Largest request head (request line and headers); a larger one gets 431 and the
    connection is closed."""
    max_connections: Annotated[int, Field(ge=1)] = 4096
    """Open connections per serving process; past it a new connection is answered 503 and
    closed at once. Also lowered to fit the process's file-descriptor limit."""
    shutdown_delay_s: Annotated[float, Field(ge=0, le=300)] = 0.0
    """On SIGTERM, how long to keep accepting connections and serving (readiness already
    answering 503) before the shutdown starts, so that load balancers that probe
    readiness stop sending first (docs/operations.md)."""
    shutdown_grace_s: Annotated[float, Field(ge=0)] = 20.0
    """On SIGTERM, how long requests already received have to finish; then the rest are
    answered 503 and stalled uploads cut (docs/operations.md)."""
    shutdown_idle_close_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    """Once the shutdown starts, how long a connection with nothing to answer stays open
    for a request already on its way before it is closed (a request already in its socket
    is always read and answered first), and how long connections taken from the listen
    backlog have to be set up (a TLS handshake) before the shutdown goes on."""
    tls: TlsSettings = Field(default_factory=TlsSettings)
    """HTTPS and mutual TLS (``TENSORGATE_TLS__*``), for gRPC too."""
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    """The gRPC service (``TENSORGATE_GRPC__*``, docs/grpc.md)."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    """JWT authentication (``TENSORGATE_AUTH__*``)."""
    fair_share: FairShareSettings = Field(default_factory=FairShareSettings)
    """Fair service between callers (``TENSORGATE_FAIR_SHARE__*``)."""
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    """Request-rate and concurrency limits per caller (``TENSORGATE_LIMITS__*``)."""
    shared_memory: SharedMemorySettings = Field(default_factory=SharedMemorySettings)
    """Shared-memory regions (``TENSORGATE_SHARED_MEMORY__*``)."""
