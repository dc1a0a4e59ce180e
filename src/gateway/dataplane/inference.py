"""Inference for every transport: admit, decode with the route's codec, queue, answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backends.base import Array
from backends.errors import InferenceError
from gateway.batching.observer import BatchTrace
from gateway.batching.policy import BatchPolicy
from gateway.dataplane.codecs import DecodedRequest, DecodingRules, RequestCodec, ResponseEncoder
from gateway.dataplane.deadlines import TIMEOUT_HEADER, request_timeout_s
from gateway.dataplane.fairness import UNSHARED, FairShares, Share
from gateway.errors import (
    BackendError,
    DeadlineExceeded,
    GatewayError,
    InvalidInput,
    ModelNotReady,
    UpstreamError,
)
from gateway.limits.limiter import Limiter
from gateway.protocol.shm_table import SharedMemoryTable
from gateway.repository.registry import ModelRegistry, ModelVersion

logger = logging.getLogger(__name__)


class PendingInference:
    """A request admitted to its model's queue; ``result`` waits for the response body,
    written by the request's codec."""

    __slots__ = ("_encode", "_model", "future")

    def __init__(
        self,
        model: ModelVersion,
        future: asyncio.Future[dict[str, Array]],
        encode: ResponseEncoder,
    ) -> None:
        self.future = future
        self._model = model
        self._encode = encode

    @property
    def model(self) -> ModelVersion:
        """The version the request runs on."""
        return self._model

    @property
    def settled(self) -> bool:
        """True once the outputs (or the error) are there: ``result`` will not wait."""
        return self.future.done()

    def cancel(self) -> None:
        """Withdraw the request (its client went away); it is skipped if still queued."""
        self.future.cancel()

    async def result(self) -> bytes:
        """The response body once the request's batch has run."""
        model = self._model
        return self._encode(model.name, model.version, await outputs_of(model, self.future))


async def outputs_of(
    model: ModelVersion, future: asyncio.Future[dict[str, Array]]
) -> dict[str, Array]:
    """Wait for a queued request's outputs; backend failures become safe domain errors."""
    try:
        return await future
    except GatewayError:
        raise  # the queue's own answers: 504, 503
    except InferenceError as exc:
        raise _inference_failure(model, exc) from None
    except Exception:
        # A backend broke its contract; never let its internals reach the client.
        logger.exception("backend of %s crashed", model.label)
        raise BackendError(
            f"inference failed in model '{model.name}' version {model.version} (internal error)"
        ) from None


_UPSTREAM_ERRORS: dict[str, type[GatewayError]] = {
    "UpstreamUnavailable": ModelNotReady,
    "DeadlineExceeded": DeadlineExceeded,
    "BadGateway": UpstreamError,
}


def _inference_failure(model: ModelVersion, exc: InferenceError) -> Exception:
    upstream = _UPSTREAM_ERRORS.get(exc.kind)
    if upstream is not None:  # a remote model: the message names the upstream's state
        logger.warning("%s: %s", model.label, exc)
        return upstream(f"model '{model.name}' version {model.version}: {exc}")
    logger.error("inference failed in %s (%s): %s", model.label, exc.kind, exc)
    if exc.kind == "InvalidArgument":
        return InvalidInput(
            f"model '{model.name}' rejected the inputs (InvalidArgument); compare "
            f"them with GET /v2/models/{model.name}"
        )
    return BackendError(
        f"inference failed in model '{model.name}' version {model.version} ({exc.kind})"
    )


def rows_limit(policy: BatchPolicy) -> int | None:
    """The most rows one request can have: the batcher splits a request into parts of
    ``max_batch_size`` rows that must all fit its queue at once, so more could never be
    queued, however long the client waited (a 413, not a retryable 503). None when the
    batcher runs each request whole (batching off)."""
    if not policy.batching:
        return None
    return policy.max_queue_size * policy.max_batch_size


_MAX_RULES = 256


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let in before its body was read: what it named, and the version chosen."""

    name: str
    version: str | None
    key: str | None
    model: ModelVersion
    share: Share = UNSHARED


class InferenceService:
    """Runs inference requests, whatever their codec, against the registry's models.

    A transport answers a request in this order: authenticate the caller and check its
    scope; its share (``shares.of``); when ``limits.active``, ``limits.enter(caller, model
    name)`` (429 past a limit) and ``limits.leave`` once the request has ended, however it
    ends; ``admit`` (404, 503, before the body is read); read the body; ``submit``; await
    the answer.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        shares: FairShares | None = None,
        limits: Limiter | None = None,
        shared_memory: SharedMemoryTable | None = None,
    ) -> None:
        self._registry = registry
        self.shares = shares
        """Callers' shares of a contended server (None: first come, first served)."""
        self.limits = Limiter() if limits is None else limits
        """The limit rules (``gateway.limits``); inactive when none is configured."""
        self.shared_memory = SharedMemoryTable() if shared_memory is None else shared_memory
        """The callers' shared-memory regions."""
        # What each version's requests are checked against, made once per version: the
        # same for every request (keyed by identity; the version is kept to hold the key).
        self._rules: dict[int, tuple[ModelVersion, DecodingRules]] = {}

    @property
    def registry(self) -> ModelRegistry:
        """Where requests are resolved to a model version."""
        return self._registry

    def admit(
        self, name: str, version: str | None, key: str | None = None, share: Share = UNSHARED
    ) -> Admission:
        """The ready version the request runs on (a label resolved, the traffic split
        applied with the caller's sticky ``key``), refused at once (404, 503) when it
        could not be queued (a full queue lets in a caller under its ``share``): before
        the body is read."""
        model = self._registry.route(name, version, key)
        batcher = model.batcher
        assert batcher is not None  # resolve() returns ready versions only
        batcher.check_admission(1, share.flow)
        return Admission(name, version, key, model, share)

    def submit(
        self,
        codec: RequestCodec,
        admission: Admission,
        body: bytes,
        headers: Mapping[str, str],
        trace: BatchTrace | None = None,
        *,
        alone: bool = False,
        subject: str | None = None,
    ) -> PendingInference:
        """Decode one admitted request with ``codec`` and queue it; raises at once when
        it cannot be queued; ``subject``, the caller, names whose shared-memory regions
        it may use. ``headers`` maps lower-case names to values (the codec's, and
        ``X-Request-Timeout-Ms``, else the model's default deadline applies); ``trace``
        learns the request's time in queue and batch size; ``alone``: the transport knows
        that no other request is being answered (``Batcher.submit``).

        A version swapped out (reloaded, unloaded) while the body was read is replaced by
        what the request names now, so that a reload fails no request.
        """
        model = self._current(admission)
        request = codec.decode(body, headers, self.decoding_rules(model), subject)
        timeout = request_timeout_s(
            request.parameters,
            headers.get(TIMEOUT_HEADER),
            model.config.batching.default_timeout_ms,
        )
        return self._queue(model, request, timeout, admission.share, trace, alone)

    def submit_decoded(
        self,
        admission: Admission,
        decode: Callable[[DecodingRules], DecodedRequest],
        deadline_s: float | None,
        trace: BatchTrace | None = None,
        *,
        alone: bool = False,
    ) -> PendingInference:
        """``submit`` for a transport that decodes its own messages (gRPC): ``decode``
        checks the request against the rules of the version it runs on; ``deadline_s`` (the
        call's own deadline, in seconds from now) bounds the request's ``timeout``."""
        model = self._current(admission)
        request = decode(self.decoding_rules(model))
        timeout = request_timeout_s(
            request.parameters, None, model.config.batching.default_timeout_ms
        )
        if deadline_s is not None and (timeout is None or deadline_s < timeout):
            timeout = deadline_s
        return self._queue(model, request, timeout, admission.share, trace, alone)

    def _current(self, admission: Admission) -> ModelVersion:
        """The admitted version, or what the request names now if it was swapped out
        (reloaded, unloaded) while the body was read, so that a reload fails no request."""
        model = admission.model
        if not model.accepting:
            model = self._registry.route(admission.name, admission.version, admission.key)
        return model

    @staticmethod
    def _queue(
        model: ModelVersion,
        request: DecodedRequest,
        timeout: float | None,
        share: Share,
        trace: BatchTrace | None,
        alone: bool,
    ) -> PendingInference:
        batcher = model.batcher
        assert batcher is not None  # resolve() returns ready versions only
        future = batcher.submit(
            request.inputs,
            request.outputs,
            timeout,
            trace,
            alone=alone,
            flow=share.flow,
            weight=share.weight,
        )
        return PendingInference(model, future, request.encode)

    def decoding_rules(self, model: ModelVersion) -> DecodingRules:
        """What requests to ``model`` (a ready version) are checked against; made once."""
        cached = self._rules.get(id(model))
        if cached is not None and cached[0] is model:
            return cached[1]
        backend, batcher, config = model.backend, model.batcher, model.config
        assert backend is not None
        assert batcher is not None
        rules = DecodingRules(
            backend.signature,
            config.allow_non_finite,
            rows_limit(batcher.policy),
            config.class_labels,
            self.shared_memory,
        )
        if len(self._rules) >= _MAX_RULES:  # versions come and go with reloads
            self._rules.clear()
        self._rules[id(model)] = (model, rules)
        return rules
