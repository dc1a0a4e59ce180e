"""``ModelStreamInfer``: many inference requests on one bidirectional call.

Each request of a stream runs through the unary pipeline (``InferenceCalls.infer``) as
soon as it is read, so several of a stream's requests can share a batch; the answers go
out in the order the requests came. A failed request is answered with its error in
``error_message``, as Triton does, and the stream goes on. At most
``grpc.stream_max_in_flight`` requests are in progress per stream: past that the stream is
read no further until the oldest is answered.

The token is checked when the stream opens (a refusal ends the stream with its code) and
again, from the cache, for each request: a token that expires mid-stream fails the
requests after it. When the server shuts down, every stream stops being read: the answers
owed are written, then the stream ends ``UNAVAILABLE`` (a stream that sent nothing ends at
once, instead of holding the shutdown for its whole grace period).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from gateway.api.state import AppState
from gateway.errors import GatewayError, Overloaded, RateLimited
from gateway.grpc.calls import Call, CallMetadata
from gateway.grpc.inference import CLIENT_CLOSED_REQUEST, InferenceCalls, pace, refuse
from gateway.grpc.status import error_status
from gateway.proto import grpc_service_pb2 as pb

Context = grpc.aio.ServicerContext[pb.ModelInferRequest, bytes]
_INFER_RESPONSE_TAG = b"\x12"  # ModelStreamInferResponse.infer_response: field 2, bytes
SHUTTING_DOWN = "the server is shutting down: requests sent after the last answer were not read"


def stream_answer(response: bytes) -> bytes:
    """A serialised ``ModelStreamInferResponse`` holding the serialised ``response``."""
    length = len(response)
    prefix = bytearray(_INFER_RESPONSE_TAG)
    while True:  # the length as a protobuf varint
        byte = length & 0x7F
        length >>= 7
        if length:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            break
    return bytes(prefix) + response


class _Stream:
    """One open stream: its reader, and the answers owed in request order."""

    def __init__(
        self,
        calls: InferenceCalls,
        state: AppState,
        metadata: CallMetadata,
        context: Context,
        max_in_flight: int,
    ) -> None:
        self._calls = calls
        self._state = state
        self._metadata = metadata
        self._context = context
        self._peer = context.peer()
        self._answers: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._reader: asyncio.Task[None] | None = None
        self.stopped = False

    async def answer(self, requests: AsyncIterator[pb.ModelInferRequest]) -> AsyncIterator[bytes]:
        """Each answer, in request order, until the client half-closes (or the server
        stops reading: then ``UNAVAILABLE`` after the answers owed)."""
        self._reader = asyncio.create_task(self._read(requests))
        try:
            while (task := await self._answers.get()) is not None:
                answer = await task
                self._slots.release()
                yield answer
            if self.stopped:
                await self._context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            await self._reader  # its error, if it failed
        finally:
            self._reader.cancel()
            while not self._answers.empty():
                left = self._answers.get_nowait()
                if left is not None:
                    left.cancel()

    def stop_reading(self) -> None:
        """Read no more requests (the server is shutting down)."""
        self.stopped = True
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self, requests: AsyncIterator[pb.ModelInferRequest]) -> None:
        try:
            async for request in requests:
                await self._slots.acquire()
                deadline_s = self._context.time_remaining()
                self._answers.put_nowait(asyncio.create_task(self._one(request, deadline_s)))
        finally:
            self._answers.put_nowait(None)

    async def _one(self, request: pb.ModelInferRequest, deadline_s: float | None) -> bytes:
        state = self._state
        call = Call("ModelStreamInfer", self._metadata, self._peer)
        try:
            principal = await state.authenticator.authenticate(self._metadata.authorization)
            call.exchange.subject = principal.subject
            payload = await self._calls.infer(request, principal, self._metadata, call, deadline_s)
        except GatewayError as exc:
            status, _ = error_status(exc)
            call.exchange.status = status
            call.exchange.failed(exc.message)
            if isinstance(exc, Overloaded | RateLimited):  # as a unary refusal is paced
                await pace(exc, state.settings.refusal_pacing_max_ms)
            return pb.ModelStreamInferResponse(error_message=exc.message).SerializeToString()
        except asyncio.CancelledError:
            call.exchange.status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            call.finish(state, inference=True)
        return stream_answer(payload)


class StreamCalls:
    """Answers ``ModelStreamInfer``; knows the open streams, to stop them at shutdown."""

    def __init__(self, calls: InferenceCalls, state: AppState, max_in_flight: int) -> None:
        self._calls = calls
        self._state = state
        self._max_in_flight = max_in_flight
        self._open: set[_Stream] = set()
        self._stopping = False

    async def model_stream_infer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[bytes]:
        """The stream's ``ModelStreamInferResponse`` messages, serialised."""
        state = self._state
        metadata = CallMetadata(context.invocation_metadata())
        try:
            if self._stopping:
                await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            await state.authenticator.authenticate(metadata.authorization)
        except GatewayError as exc:
            call = Call("ModelStreamInfer", metadata, context.peer())
            try:
                await refuse(context, call, exc, 0)
            finally:
                call.finish(state, inference=True)
        stream = _Stream(self._calls, state, metadata, context, self._max_in_flight)
        self._open.add(stream)
        try:
            async for answer in stream.answer(requests):
                yield answer
        finally:
            self._open.discard(stream)

    def stop_reading(self) -> None:
        """The server is shutting down: every stream is read no further, and ends once
        the answers it is owed are written."""
        self._stopping = True
        for stream in self._open:
            stream.stop_reading()
