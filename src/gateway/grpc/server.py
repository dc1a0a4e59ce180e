"""The gRPC server of one serving process: ``inference.GRPCInferenceService``, the standard
health service and server reflection, on the process's event loop (so a gRPC request and a
REST request for one model share the model's batches).

Every limit is a setting (``grpc.*``, docs/grpc.md#settings): the largest message (the
HTTP body cap), concurrent streams per connection and calls per process, keepalive pings,
idle and aged connections. TLS and mutual TLS come from the HTTP settings (``tls.*``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.api.state import AppState
from gateway.grpc.calls import SERVICE
from gateway.grpc.health_status import HealthStatus
from gateway.grpc.inference import InferenceCalls
from gateway.grpc.management import ManagementCalls
from gateway.grpc.streams import StreamCalls
from gateway.grpc.tls import server_credentials
from gateway.proto import grpc_service_pb2 as pb
from gateway.proto.pool import POOL
from gateway.protocol.shm_table import Kind, SharedMemoryAction
from gateway.settings import Settings

logger = logging.getLogger(__name__)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _unary(
    handler: Callable[..., Any], request: type[Message], serialize: bool = True
) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request.FromString,
        response_serializer=_serialize if serialize else None,
    )


def service_handler(
    state: AppState, inference: InferenceCalls, streams: StreamCalls
) -> grpc.GenericRpcHandler:
    """``inference.GRPCInferenceService``'s implemented methods; the others (trace and log
    settings) answer ``UNIMPLEMENTED``."""
    manage = ManagementCalls(state)
    methods = {
        "ServerLive": _unary(manage.server_live, pb.ServerLiveRequest),
        "ServerReady": _unary(manage.server_ready, pb.ServerReadyRequest),
        "ServerMetadata": _unary(manage.server_metadata, pb.ServerMetadataRequest),
        "ModelReady": _unary(manage.model_ready, pb.ModelReadyRequest),
        "ModelMetadata": _unary(manage.model_metadata, pb.ModelMetadataRequest),
        "ModelConfig": _unary(manage.model_config, pb.ModelConfigRequest),
        "ModelStatistics": _unary(manage.model_statistics, pb.ModelStatisticsRequest),
        "RepositoryIndex": _unary(manage.repository_index, pb.RepositoryIndexRequest),
        "RepositoryModelLoad": _unary(manage.repository_model_load, pb.RepositoryModelLoadRequest),
        "RepositoryModelUnload": _unary(
            manage.repository_model_unload, pb.RepositoryModelUnloadRequest
        ),
        # The inference answers are serialised by their codec (bytes pass through).
        "ModelInfer": _unary(inference.model_infer, pb.ModelInferRequest, serialize=False),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(
            streams.model_stream_infer,
            request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=None,
        ),
    }
    kinds: tuple[tuple[Kind, str], ...] = (
        ("system", "SystemSharedMemory"),
        ("cuda", "CudaSharedMemory"),
    )
    actions: tuple[SharedMemoryAction, ...] = ("status", "register", "unregister")
    for kind, prefix in kinds:
        for action in actions:
            method = f"{prefix}{action.title()}"
            answer = partial(
                manage.shared_memory, method, kind, action, getattr(pb, f"{method}Response")
            )
            methods[method] = _unary(answer, getattr(pb, f"{method}Request"))
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def server_options(settings: Settings, *, reuse_port: bool) -> list[tuple[str, Any]]:
    """The channel arguments of the server: its limits and keepalive policy."""
    grpc_settings = settings.grpc
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.max_request_body_bytes),
        ("grpc.max_send_message_length", -1),
        ("grpc.max_concurrent_streams", grpc_settings.max_concurrent_streams),
        ("grpc.keepalive_time_ms", round(grpc_settings.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", round(grpc_settings.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_connection_idle_ms", round(grpc_settings.max_connection_idle_s * 1000)),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    if grpc_settings.max_connection_age_s is not None:
        options.append(
            ("grpc.max_connection_age_ms", round(grpc_settings.max_connection_age_s * 1000))
        )
        options.append(
            ("grpc.max_connection_age_grace_ms", round(settings.shutdown_grace_s * 1000))
        )
    return options


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@asynccontextmanager
async def grpc_server(state: AppState, *, reuse_port: bool = False) -> AsyncIterator[int]:
    """Serve gRPC on ``settings.grpc.port`` (nothing when it is 0) until the context
    exits, then stop: new calls refused, those in progress given ``shutdown_grace_s``.
    Yields the port bound (0 when off). ``reuse_port``: several worker processes bind the
    same port, the kernel spreading connections between them."""
    settings = state.settings
    port = settings.grpc.port
    if port == 0:
        yield 0
        return
    server = grpc.aio.server(
        options=server_options(settings, reuse_port=reuse_port),
        maximum_concurrent_rpcs=settings.grpc.max_concurrent_rpcs,
    )
    inference = InferenceCalls(state)
    streams = StreamCalls(inference, state, settings.grpc.stream_max_in_flight)
    server.add_generic_rpc_handlers((service_handler(state, inference, streams),))
    health_service = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    reflection.enable_server_reflection(
        (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server, pool=POOL
    )
    address = _address(settings.host, port)
    credentials = server_credentials(settings.tls)
    try:
        bound = (
            server.add_insecure_port(address)
            if credentials is None
            else server.add_secure_port(address, credentials)
        )
    except RuntimeError as exc:
        raise RuntimeError(f"gRPC cannot listen on {address} (grpc.port): {exc}") from None
    await server.start()
    status = HealthStatus(health_service, state)
    await status.start()
    stopping = _Stopping(server, streams, settings)
    state.lifecycle.on_draining(stopping.soon)
    scheme = "grpcs" if credentials is not None else "grpc"
    logger.info("gRPC listening on %s://%s", scheme, _address(settings.host, bound))
    try:
        yield bound
    finally:
        await status.stop()
        await stopping.now()


class _Stopping:
    """Stops the server once: when the shutdown begins (``shutdown_delay_s`` after the
    signal, when uvicorn stops taking connections too), or at the latest when the app's
    lifespan ends. New calls are refused from then on, and streams are read no further;
    the calls in progress have ``shutdown_grace_s``, the same budget as HTTP's and spent
    at the same time."""

    def __init__(self, server: grpc.aio.Server, streams: StreamCalls, settings: Settings) -> None:
        self._server = server
        self._streams = streams
        self._grace_s = settings.shutdown_grace_s
        self._delay_s = settings.shutdown_delay_s
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        """From a signal handler: stop after the shutdown delay."""
        self._loop.call_soon_threadsafe(self._loop.call_later, self._delay_s, self._begin)

    def _begin(self) -> None:
        if self._task is None:
            self._streams.stop_reading()
            self._task = self._loop.create_task(self._server.stop(self._grace_s))

    async def now(self) -> None:
        """Stop (or finish stopping): returns once every call has ended."""
        self._begin()
        assert self._task is not None
        await self._task
