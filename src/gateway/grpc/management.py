"""The RPCs other than inference: health, metadata, configuration, statistics, repository,
shared memory.

Each answers what its REST route answers (the same data-plane call, the same scopes: none
for health and server metadata, ``models:read`` to read a model, ``admin`` to load and
unload), converted to Triton's messages: the REST documents are the protobuf messages'
JSON form, so ``json_format`` does the conversion and a field added on REST that the
message lacks is left out rather than refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel

from gateway.api.routes.health import SERVER_EXTENSIONS, server_version
from gateway.api.state import AppState
from gateway.auth.principal import ADMIN, MODELS_INFER, MODELS_READ, Principal
from gateway.dataplane.metadata import check_server_ready, model_metadata, repository_index
from gateway.dataplane.model_config import model_config
from gateway.errors import GatewayError, ModelNotFound, ModelNotReady
from gateway.grpc.calls import Call, CallMetadata
from gateway.grpc.inference import CLIENT_CLOSED_REQUEST
from gateway.grpc.status import error_status
from gateway.proto import grpc_service_pb2 as pb
from gateway.proto import model_config_pb2 as config_pb
from gateway.protocol.shm_regions import RegionSpec
from gateway.protocol.shm_table import Kind, SharedMemoryAction

Context = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)


def _as_message(document: BaseModel | Mapping[str, Any], message: M) -> M:
    raw = document.model_dump(exclude_none=True) if isinstance(document, BaseModel) else document
    return json_format.ParseDict(raw, message, ignore_unknown_fields=True)


class ManagementCalls:
    """Answers the non-inference RPCs from the lifespan's state."""

    def __init__(self, state: AppState) -> None:
        self._state = state

    async def _answer(
        self,
        method: str,
        context: Context,
        scope: str | None,
        answer: Callable[[], Awaitable[M]],
    ) -> M:
        """Authenticate (when ``scope`` is not None), answer, log; errors as gRPC codes."""
        return await self._answer_caller(method, context, scope, lambda _caller: answer())

    async def _answer_caller(
        self,
        method: str,
        context: Context,
        scope: str | None,
        answer: Callable[[Principal | None], Awaitable[M]],
    ) -> M:
        """``_answer``, for an ``answer`` that needs the caller (None when ``scope`` is)."""
        state = self._state
        metadata = CallMetadata(context.invocation_metadata())
        call = Call(method, metadata, context.peer())
        try:
            principal = None
            if scope is not None:
                principal = await state.authenticator.authenticate(metadata.authorization)
                call.exchange.subject = principal.subject
                principal.require(scope)
            result = await answer(principal)
            call.exchange.status = 200
            return result
        except GatewayError as exc:
            status, code = error_status(exc)
            call.exchange.status = status
            call.exchange.failed(exc.message)
            await context.abort(code, exc.message)
            raise AssertionError("unreachable: abort raises") from None
        except asyncio.CancelledError:
            call.exchange.status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            call.finish(state, inference=False)

    async def server_live(self, request: pb.ServerLiveRequest, context: Context) -> Message:
        """Live while the process answers."""
        del request  # it carries nothing

        async def answer() -> pb.ServerLiveResponse:
            return pb.ServerLiveResponse(live=True)

        return await self._answer("ServerLive", context, None, answer)

    async def server_ready(self, request: pb.ServerReadyRequest, context: Context) -> Message:
        """Ready as ``GET /v2/health/ready`` is (not ready from the moment it is told to stop)."""
        del request  # it carries nothing
        state = self._state

        async def answer() -> pb.ServerReadyResponse:
            if state.lifecycle.draining:
                return pb.ServerReadyResponse(ready=False)
            try:
                check_server_ready(
                    state.registry, require_all=state.settings.readiness_requires_all_models
                )
            except ModelNotReady:
                return pb.ServerReadyResponse(ready=False)
            return pb.ServerReadyResponse(ready=True)

        return await self._answer("ServerReady", context, None, answer)

    async def server_metadata(self, request: pb.ServerMetadataRequest, context: Context) -> Message:
        """Name, version and extensions, as ``GET /v2``."""
        del request  # it carries nothing

        async def answer() -> pb.ServerMetadataResponse:
            return pb.ServerMetadataResponse(
                name="tensorgate", version=server_version(), extensions=SERVER_EXTENSIONS
            )

        return await self._answer("ServerMetadata", context, None, answer)

    async def model_ready(self, request: pb.ModelReadyRequest, context: Context) -> Message:
        """Whether the model (version) is ready: false for one unknown, as Triton answers."""
        registry = self._state.registry

        async def answer() -> pb.ModelReadyResponse:
            try:
                model = registry.find(request.name, request.version or None)
            except (ModelNotFound, ModelNotReady):
                return pb.ModelReadyResponse(ready=False)
            return pb.ModelReadyResponse(ready=model.ready)

        return await self._answer("ModelReady", context, MODELS_READ, answer)

    async def model_metadata(self, request: pb.ModelMetadataRequest, context: Context) -> Message:
        """Signature and versions, as ``GET /v2/models/<name>``."""
        registry = self._state.registry

        async def answer() -> pb.ModelMetadataResponse:
            document = model_metadata(registry, request.name, request.version or None)
            return _as_message(document, pb.ModelMetadataResponse())

        return await self._answer("ModelMetadata", context, MODELS_READ, answer)

    async def model_config(self, request: pb.ModelConfigRequest, context: Context) -> Message:
        """The configuration as Triton prints it, as ``GET /v2/models/<name>/config``."""
        registry = self._state.registry

        async def answer() -> pb.ModelConfigResponse:
            document = model_config(registry, request.name, request.version or None)
            config = _as_message(document, config_pb.ModelConfig())
            return pb.ModelConfigResponse(config=config)

        return await self._answer("ModelConfig", context, MODELS_READ, answer)

    async def model_statistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> Message:
        """Every ready version's statistics (all models when the name is empty)."""
        control = self._state.control

        async def answer() -> pb.ModelStatisticsResponse:
            document = await control.statistics(request.name or None, request.version or None)
            return _as_message(document, pb.ModelStatisticsResponse())

        return await self._answer("ModelStatistics", context, MODELS_READ, answer)

    async def repository_index(
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> Message:
        """Every model version and its state (only the ready ones with ``ready``)."""
        registry = self._state.registry

        async def answer() -> pb.RepositoryIndexResponse:
            response = pb.RepositoryIndexResponse()
            for entry in repository_index(registry):
                if request.ready and entry.state != "READY":
                    continue
                response.models.add(
                    name=entry.name, version=entry.version, state=entry.state, reason=entry.reason
                )
            return response

        return await self._answer("RepositoryIndex", context, MODELS_READ, answer)

    async def repository_model_load(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> Message:
        """Load or reload a model (``config`` overrides its configuration), on every worker."""
        control = self._state.control

        async def answer() -> pb.RepositoryModelLoadResponse:
            await control.load(request.model_name, _repository_body(request.parameters))
            return pb.RepositoryModelLoadResponse()

        return await self._answer("RepositoryModelLoad", context, ADMIN, answer)

    async def repository_model_unload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> Message:
        """Stop serving a model, its queues drained first, on every worker."""
        control = self._state.control

        async def answer() -> pb.RepositoryModelUnloadResponse:
            await control.unload(request.model_name, _repository_body(request.parameters))
            return pb.RepositoryModelUnloadResponse()

        return await self._answer("RepositoryModelUnload", context, ADMIN, answer)

    async def shared_memory(
        self,
        method: str,
        kind: Kind,
        action: SharedMemoryAction,
        response: type[M],
        request: Message,
        context: Context,
    ) -> Message:
        """A ``*SharedMemoryStatus``, ``Register`` or ``Unregister`` call (``method``) of
        the ``kind`` extension, on the caller's own regions (``gateway.protocol.shm_table``):
        status needs ``models:read``, a change ``models:infer``."""
        name: str = getattr(request, "name", "")
        control = self._state.control

        async def answer(caller: Principal | None) -> M:
            assert caller is not None  # a scope is required
            subject = caller.subject
            if action == "register":
                key, offset = getattr(request, "key", ""), getattr(request, "offset", 0)
                spec = RegionSpec(name, key, offset, getattr(request, "byte_size", 0))
                await control.register_region(kind, subject, spec)
                return response()
            if action == "unregister":
                await control.unregister_region(kind, subject, name)
                return response()
            regions = {str(s["name"]): s for s in control.regions.status(kind, subject, name)}
            return json_format.ParseDict({"regions": regions}, response())

        scope = MODELS_READ if action == "status" else MODELS_INFER
        return await self._answer_caller(method, context, scope, answer)


def _repository_body(parameters: Mapping[str, pb.ModelRepositoryParameter]) -> dict[str, Any]:
    """A load or unload request's parameters as the REST body carries them."""
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = None if choice is None else getattr(parameter, choice)
    return {"parameters": values} if values else {}
