"""``ModelInfer``: the inference pipeline of the REST routes, over gRPC (``InferenceCalls.infer``
also answers each request of a stream, ``gateway.grpc.streams``).

The steps and their order are the data plane's (``InferenceService``): the caller's token
and scope, its share and limits, admission (a full queue is ``UNAVAILABLE`` before the
tensors are decoded), the decode, the queue, the answer. The gRPC deadline is the
request's deadline unless its ``timeout`` parameter is shorter; a cancelled call withdraws
its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

import grpc

from gateway.api.pipeline.endpoint import refusal_delay_s
from gateway.api.state import AppState
from gateway.auth.principal import Principal
from gateway.batching.observer import BatchTrace
from gateway.dataplane.fairness import UNSHARED
from gateway.errors import GatewayError, Overloaded, RateLimited
from gateway.grpc.calls import Call, CallMetadata
from gateway.grpc.status import error_status, retry_metadata
from gateway.grpc.tensors import decode_infer_request
from gateway.proto import grpc_service_pb2 as pb
from gateway.repository.routing import STICKY_SUBJECT

logger = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
GATEWAY_TIMEOUT = 504


class InferenceCalls:
    """Answers the inference RPCs from the lifespan's state."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._in_flight = 0

    async def model_infer(
        self,
        request: pb.ModelInferRequest,
        context: grpc.aio.ServicerContext[pb.ModelInferRequest, bytes],
    ) -> bytes:
        """One unary inference call: the serialised ``ModelInferResponse``."""
        state = self._state
        metadata = CallMetadata(context.invocation_metadata())
        call = Call("ModelInfer", metadata, context.peer())
        try:
            principal = await state.authenticator.authenticate(metadata.authorization)
            call.exchange.subject = principal.subject
            return await self.infer(request, principal, metadata, call, context.time_remaining())
        except GatewayError as exc:
            await refuse(context, call, exc, state.settings.refusal_pacing_max_ms)
            raise AssertionError("unreachable: abort raises") from None
        except asyncio.CancelledError:
            # gRPC cancels the handler when the call's deadline passes, as when the client
            # cancels it (or at shutdown): only the latter is 499.
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            call.exchange.status = GATEWAY_TIMEOUT if expired else CLIENT_CLOSED_REQUEST
            raise
        finally:
            call.finish(state, inference=True)

    async def infer(
        self,
        request: pb.ModelInferRequest,
        principal: Principal,
        metadata: CallMetadata,
        call: Call,
        deadline_s: float | None,
    ) -> bytes:
        """The pipeline after authentication: the serialised ``ModelInferResponse``."""
        state = self._state
        name = request.model_name
        exchange = call.exchange
        exchange.model = name
        principal.require_infer(name)
        service = state.inference
        share = UNSHARED if service.shares is None else service.shares.of(principal)
        limits = service.limits
        held = await limits.enter(principal, name) if limits.active else None
        self._in_flight += 1
        try:
            sticky = state.registry.sticky(name)
            key = None
            if sticky is not None:
                key = principal.subject if sticky == STICKY_SUBJECT else metadata.get(sticky)
            admission = service.admit(name, request.model_version or None, key, share)
            exchange.version = str(admission.model.version)
            exchange.trace = BatchTrace()
            pending = service.submit_decoded(
                admission,
                partial(decode_infer_request, request, subject=principal.subject),
                deadline_s,
                exchange.trace,
                alone=self._in_flight == 1,
            )
            exchange.version = str(pending.model.version)
            try:
                payload = await pending.result()
            except asyncio.CancelledError:
                pending.cancel()  # withdrawn: nothing is computed for an answer never read
                raise
        finally:
            self._in_flight -= 1
            if held is not None:
                limits.leave(held)
        exchange.status = 200
        exchange.response_bytes = len(payload)
        return payload


async def refuse(
    context: grpc.aio.ServicerContext[pb.ModelInferRequest, bytes],
    call: Call,
    error: GatewayError,
    pacing_max_ms: float,
) -> None:
    """Answer ``error`` with its gRPC code (raises, as ``abort`` does)."""
    status, code = error_status(error)
    call.exchange.status = status
    call.exchange.failed(error.message)
    if isinstance(error, Overloaded | RateLimited):
        await pace(error, pacing_max_ms)
    await context.abort(code, error.message, retry_metadata(error))


async def pace(refusal: Overloaded | RateLimited, pacing_max_ms: float) -> None:
    """Hold a refusal back as REST does: a client resending at once spins on refusals."""
    delay_s = refusal_delay_s(refusal, pacing_max_ms)
    if delay_s > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(delay_s)
