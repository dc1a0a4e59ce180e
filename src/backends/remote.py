"""The remote backend: each batch is sent to an Open Inference Protocol server (another
tensorgate, Triton, KServe) over HTTP, so that the gateway authenticates, validates and
batches in front of GPU servers elsewhere.

One upstream address (a Kubernetes Service or a load balancer spreads the load), or a
list of replicas chosen by fewest outstanding batches with a circuit breaker each
(``backends.replicas``) and periodic readiness checks. A batch is retried on another
replica only when it never reached the first (the connection could not be made, or the
request could not be written); once sent, a failure is a 502, since the upstream may have
run it. The caller's deadline bounds each call (``CALL_TIMEOUT_S``) and travels upstream
as ``X-Request-Timeout-Ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from backends.base import CALL_TIMEOUT_S, Array, ModelSignature
from backends.errors import InferenceError, ModelLoadError
from backends.oip_client import (
    Wire,
    WireError,
    decode_response,
    encode_request,
    signature_from_metadata,
)
from backends.replicas import Replica, ReplicaSet

logger = logging.getLogger(__name__)

# Errors raised before the request was written: the upstream never saw it.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError)


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """Where a remote model lives and how to call it (a model's ``remote`` config)."""

    urls: tuple[str, ...]
    model: str
    version: str | None = None
    wire: Wire = "binary"
    token_env: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    connect_timeout_s: float = 1.0
    timeout_s: float = 30.0
    """Longest call when the batch carries no deadline."""
    max_connections: int = 64
    """Connections per replica."""
    failure_threshold: int = 3
    open_s: float = 5.0
    health_interval_s: float = 2.0


def _token(options: RemoteOptions) -> str | None:
    if options.token_env is not None:
        token = os.environ.get(options.token_env)
        if not token:
            raise ModelLoadError(f"remote.token_env: {options.token_env} is not set")
        return token
    if options.token_file is not None:
        try:
            return Path(options.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ModelLoadError(f"remote.token_file: cannot read it: {exc}") from None
    return None


def _verify(options: RemoteOptions) -> ssl.SSLContext | bool:
    if options.ca_file is None and options.cert_file is None:
        return True
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
        if options.cert_file is not None:
            context.load_cert_chain(options.cert_file, options.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ModelLoadError(f"remote TLS files: {exc}") from None
    return context


class RemoteBackend:
    """Runs batches on upstream replicas; see the module docstring."""

    def __init__(
        self,
        options: RemoteOptions,
        signature: ModelSignature,
        headers: Mapping[str, str],
        verify: ssl.SSLContext | bool,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        """``transports`` (by URL) replace the network, for tests."""
        self._options = options
        self._signature = signature
        self._headers = dict(headers)
        limits = httpx.Limits(
            max_connections=options.max_connections,
            max_keepalive_connections=options.max_connections,
        )
        replicas = [
            Replica(
                url,
                httpx.AsyncClient(
                    base_url=url,
                    limits=limits,
                    verify=verify,
                    transport=(transports or {}).get(url),
                ),
            )
            for url in options.urls
        ]
        self._replicas = ReplicaSet(
            replicas, failure_threshold=options.failure_threshold, open_s=options.open_s
        )
        version = f"/versions/{options.version}" if options.version else ""
        self._path = f"/v2/models/{options.model}{version}/infer"
        self._metadata = {
            "platform": "remote",
            "execution_provider": "remote",
            "upstream": ", ".join(options.urls),
            "upstream_model": options.model + (f" version {options.version}" if version else ""),
            "wire": options.wire,
        }
        self._health: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def load(
        cls, options: RemoteOptions, transport: httpx.BaseTransport | None = None
    ) -> RemoteBackend:
        """Read every replica's metadata of the model (blocking: call it in a thread); at
        least one must answer and all that answer must agree on the signature.
        ``transport`` replaces the network for that, in tests."""
        if not options.urls:
            raise ModelLoadError("remote.urls names no upstream")
        token = _token(options)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        verify = _verify(options)
        version = f"/versions/{options.version}" if options.version else ""
        signatures: dict[str, ModelSignature] = {}
        errors: list[str] = []
        timeout = httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s)
        with httpx.Client(
            headers=headers, verify=verify, timeout=timeout, transport=transport
        ) as http:
            for url in options.urls:
                try:
                    answer = http.get(f"{url}/v2/models/{options.model}{version}")
                    answer.raise_for_status()
                    signatures[url] = signature_from_metadata(answer.json())
                except (httpx.HTTPError, WireError, ValueError) as exc:
                    errors.append(f"{url}: {_reason(exc)}")
        if not signatures:
            raise ModelLoadError(f"no upstream answered the model's metadata ({'; '.join(errors)})")
        (first_url, signature), *others = signatures.items()
        for url, other in others:
            if other != signature:
                raise ModelLoadError(
                    f"upstreams disagree on the signature of {options.model}: {first_url} and "
                    f"{url} describe different inputs or outputs"
                )
        if errors:
            logger.warning("remote model %s: %s", options.model, "; ".join(errors))
        return cls(options, signature, headers, verify)

    @property
    def signature(self) -> ModelSignature:
        """The upstream's signature, as its metadata gave it."""
        return self._signature

    @property
    def metadata(self) -> Mapping[str, str]:
        """Where the model runs."""
        return self._metadata

    def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> asyncio.Task[dict[str, Array]]:
        """Send one batch upstream; see ``backends.base.Backend``."""
        if self._health is None and not self._closed:
            self._health = asyncio.get_running_loop().create_task(self._check_health())
        names = list(output_names) if output_names is not None else None
        return asyncio.ensure_future(self._call(inputs, names))

    async def _call(self, inputs: Mapping[str, Array], names: list[str] | None) -> dict[str, Array]:
        if self._closed:
            raise InferenceError("the remote model is closed", kind="closed")
        wanted = names if names is not None else [spec.name for spec in self._signature.outputs]
        budget = CALL_TIMEOUT_S.get()
        deadline = time.monotonic() + (budget if budget is not None else self._options.timeout_s)
        body, headers = encode_request(inputs, wanted, self._options.wire)
        headers.update(self._headers)
        tried: set[str] = set()
        while True:
            replica = self._replicas.choose(tried)
            if replica is None:
                raise InferenceError(
                    f"no upstream replica can take the batch: {self._replicas.describe()}",
                    kind="UpstreamUnavailable",
                )
            tried.add(replica.url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._replicas.released(replica)
                raise InferenceError("the deadline passed before the call", kind="DeadlineExceeded")
            outputs = await self._attempt(replica, body, headers, remaining)
            if outputs is not None:
                return outputs

    async def _attempt(
        self,
        replica: Replica[httpx.AsyncClient],
        body: bytes,
        headers: dict[str, str],
        remaining: float,
    ) -> dict[str, Array] | None:
        """One try on ``replica``: its outputs, None to try another replica, or raises."""
        headers["x-request-timeout-ms"] = str(max(1, int(remaining * 1000)))
        connect = min(remaining, self._options.connect_timeout_s)
        replica.outstanding += 1
        try:
            answer = await replica.client.post(
                self._path,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(remaining, connect=connect),
            )
        except _NEVER_SENT as exc:
            self._replicas.failed(replica, _reason(exc))
            return None  # it never reached this replica: another one may take it
        except httpx.TimeoutException:
            self._replicas.released(replica)
            raise InferenceError(
                f"{replica.url} did not answer within the deadline ({remaining * 1000:.0f} ms)",
                kind="DeadlineExceeded",
            ) from None
        except httpx.HTTPError as exc:
            self._replicas.failed(replica, _reason(exc))
            raise InferenceError(
                f"{replica.url} broke off the call: {_reason(exc)}", kind="BadGateway"
            ) from None
        finally:
            replica.outstanding -= 1
        if answer.status_code != 200:
            self._upstream_failure(replica, answer)
            return None
        self._replicas.succeeded(replica)
        try:
            return decode_response(answer.content, answer.headers)
        except WireError as exc:
            raise InferenceError(f"{replica.url}: {exc}", kind="BadGateway") from None

    def _upstream_failure(
        self, replica: Replica[httpx.AsyncClient], answer: httpx.Response
    ) -> bool:
        """Deal with a non-200 answer: True to try another replica (a 503: the upstream
        refused without running it), else raise the matching error."""
        message = _error_message(answer)
        status = answer.status_code
        if status == 503:
            if "retry-after" in answer.headers:  # its queue is full: busy, not broken
                self._replicas.released(replica)
            else:
                self._replicas.failed(replica, f"503 {message}")
            return True
        if status == 504:
            self._replicas.released(replica)
            raise InferenceError(f"{replica.url} answered 504: {message}", kind="DeadlineExceeded")
        if status >= 500:
            self._replicas.failed(replica, f"{status} {message}")
        else:
            self._replicas.released(replica)
        raise InferenceError(f"{replica.url} answered {status}: {message}", kind="BadGateway")

    async def _check_health(self) -> None:
        """Ask each replica's readiness every ``health_interval_s``, until closed."""
        while not self._closed:
            await asyncio.gather(*(self._check(r) for r in self._replicas.replicas))
            await asyncio.sleep(self._options.health_interval_s)

    async def _check(self, replica: Replica[httpx.AsyncClient]) -> None:
        timeout = httpx.Timeout(self._options.connect_timeout_s * 2)
        try:
            answer = await replica.client.get("/v2/health/ready", timeout=timeout)
        except httpx.HTTPError as exc:
            self._replicas.health(replica, ready=False, reason=_reason(exc))
            return
        ready = answer.status_code == 200
        self._replicas.health(replica, ready=ready, reason=f"readiness {answer.status_code}")

    async def close(self) -> None:
        """Stop the health checks and close every connection; idempotent."""
        self._closed = True
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
        for replica in self._replicas.replicas:
            await replica.client.aclose()


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _error_message(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error")
    except ValueError:
        error = None
    text = error if isinstance(error, str) else answer.text
    return text[:200]
