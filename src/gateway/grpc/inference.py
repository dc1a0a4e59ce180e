"""``ModelInfer`` and ``ModelStreamInfer``: the inference pipeline of the REST routes, over gRPC.

The steps and their order are the data plane's (``InferenceService``): the caller's token
and scope, its share and limits, admission (a full queue is ``UNAVAILABLE`` before the
tensors are decoded), the decode, the queue, the answer. The gRPC deadline is the
request's deadline unless its ``timeout`` parameter is shorter; a cancelled call withdraws
its request. A stream answers its requests in the order they came, each one batched with
whatever else is queued (several of one stream's requests can share a batch), and carries
a failed request's error in ``error_message`` as Triton does, the stream going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

import grpc

from gateway.api.pipeline.endpoint import refusal_delay_s
from gateway.api.state import AppState
from gateway.auth.principal import Principal
from gateway.batching.observer import BatchTrace
from gateway.dataplane.fairness import UNSHARED
from gateway.errors import GatewayError, Overloaded, RateLimited
from gateway.grpc.calls import Call, CallMetadata
from gateway.grpc.proto import grpc_service_pb2 as pb
from gateway.grpc.status import error_status, retry_metadata
from gateway.grpc.tensors import decode_infer_request
from gateway.repository.routing import STICKY_SUBJECT

logger = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
GATEWAY_TIMEOUT = 504
_STREAM_RESPONSE_FIELD = b"\x12"  # ModelStreamInferResponse.infer_response: field 2, bytes


class InferenceCalls:
    """Answers the inference RPCs from the lifespan's state."""

    def __init__(self, state: AppState, stream_max_in_flight: int) -> None:
        self._state = state
        self._stream_max_in_flight = stream_max_in_flight
        self._in_flight = 0

    async def model_infer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """One unary inference call: the serialised ``ModelInferResponse``."""
        state = self._state
        metadata = CallMetadata(context.invocation_metadata())
        call = Call("ModelInfer", metadata, context.peer())
        try:
            principal = await state.authenticator.authenticate(metadata.authorization)
            call.exchange.subject = principal.subject
            return await self._infer(request, principal, metadata, call, context.time_remaining())
        except GatewayError as exc:
            await _refuse(context, call, exc, state.settings.refusal_pacing_max_ms)
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

    async def model_stream_infer(
        self,
        requests: AsyncIterator[pb.ModelInferRequest],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        """A stream: each request's ``ModelStreamInferResponse``, in request order. The
        token is checked when the stream opens (a refusal ends it with the code) and again
        for each request (cached: a token that expires mid-stream fails the requests
        after it, in their ``error_message``)."""
        state = self._state
        metadata = CallMetadata(context.invocation_metadata())
        try:
            await state.authenticator.authenticate(metadata.authorization)
        except GatewayError as exc:
            call = Call("ModelStreamInfer", metadata, context.peer())
            try:
                await _refuse(context, call, exc, 0)
            finally:
                call.finish(state, inference=True)
        answers: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue(
            self._stream_max_in_flight
        )
        reader = asyncio.create_task(self._read_stream(requests, metadata, answers, context))
        try:
            while (task := await answers.get()) is not None:
                yield await task
            await reader  # its error, if it failed
        finally:
            reader.cancel()
            while not answers.empty():
                left = answers.get_nowait()
                if left is not None:
                    left.cancel()

    async def _read_stream(
        self,
        requests: AsyncIterator[pb.ModelInferRequest],
        metadata: CallMetadata,
        answers: asyncio.Queue[asyncio.Task[bytes] | None],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> None:
        """Start each request of the stream as it arrives (at most ``stream_max_in_flight``
        unanswered: the stream is read no further until the oldest is written)."""
        peer = context.peer()
        try:
            async for request in requests:
                deadline_s = context.time_remaining()
                task = asyncio.create_task(self._stream_one(request, metadata, peer, deadline_s))
                await answers.put(task)
        finally:
            await answers.put(None)

    async def _stream_one(
        self,
        request: pb.ModelInferRequest,
        metadata: CallMetadata,
        peer: str,
        deadline_s: float | None,
    ) -> bytes:
        state = self._state
        call = Call("ModelStreamInfer", metadata, peer)
        try:
            principal = await state.authenticator.authenticate(metadata.authorization)
            call.exchange.subject = principal.subject
            payload = await self._infer(request, principal, metadata, call, deadline_s)
        except GatewayError as exc:
            status, _ = error_status(exc)
            call.exchange.status = status
            call.exchange.failed(exc.message)
            if isinstance(exc, Overloaded | RateLimited):  # as a unary refusal is paced
                await _pace(exc, state.settings.refusal_pacing_max_ms)
            return pb.ModelStreamInferResponse(error_message=exc.message).SerializeToString()
        except asyncio.CancelledError:
            call.exchange.status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            call.finish(state, inference=True)
        return _stream_answer(payload)

    async def _infer(
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
                partial(decode_infer_request, request),
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


def _stream_answer(response: bytes) -> bytes:
    """A serialised ``ModelStreamInferResponse`` holding the serialised ``response``."""
    length = len(response)
    prefix = bytearray(_STREAM_RESPONSE_FIELD)
    while True:  # the length as a protobuf varint
        byte = length & 0x7F
        length >>= 7
        if length:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            break
    return bytes(prefix) + response


async def _refuse(
    context: grpc.aio.ServicerContext[bytes, bytes],
    call: Call,
    error: GatewayError,
    pacing_max_ms: float,
) -> None:
    """Answer ``error`` with its gRPC code (raises, as ``abort`` does)."""
    status, code = error_status(error)
    call.exchange.status = status
    call.exchange.failed(error.message)
    if isinstance(error, Overloaded | RateLimited):
        await _pace(error, pacing_max_ms)
    await context.abort(code, error.message, retry_metadata(error))


async def _pace(refusal: Overloaded | RateLimited, pacing_max_ms: float) -> None:
    """Hold a refusal back as REST does: a client resending at once spins on refusals."""
    delay_s = refusal_delay_s(refusal, pacing_max_ms)
    if delay_s > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(delay_s)
