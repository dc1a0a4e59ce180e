"""The gRPC floor of ``make bench``: a bare ``grpc.aio`` server whose one generic unary
handler, ``inference.GRPCInferenceService/ModelInfer``, takes the request's bytes unparsed
and answers a fixed serialised ``ModelInferResponse`` of one ``mlp`` row: the size of
tensorgate's answer to the benchmark's ``mlp`` call (70 bytes). No auth, no model, no
metrics: what grpcio's own per-call cost leaves to any Python server at most.

It is served as tensorgate serves gRPC: the same channel arguments (message sizes,
``grpc.so_reuseport`` 0, keepalive) and concurrent call cap, built by
``gateway.grpc.server`` from the default settings, on uvloop when it is installed (as
uvicorn's ``loop="auto"`` runs tensorgate's process, gRPC server included).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

import grpc
import numpy as np

from gateway.grpc.calls import SERVICE
from gateway.grpc.server import server_options
from gateway.proto import grpc_service_pb2 as pb
from gateway.settings import Settings


def answer() -> bytes:
    """The fixed answer: ``mlp``'s ``logits`` for one row, FP32 [1, 10], in
    ``raw_output_contents``, as tensorgate encodes it (gateway/grpc/tensors.py)."""
    response = pb.ModelInferResponse(model_name="mlp", model_version="1")
    response.outputs.add(name="logits", datatype="FP32", shape=[1, 10])
    response.raw_output_contents.append(np.linspace(0.1, 1.0, 10, dtype=np.float32).tobytes())
    return response.SerializeToString()


def handler(fixed: bytes) -> grpc.GenericRpcHandler:
    """``ModelInfer`` answering ``fixed`` to any request; bytes in and out, unparsed."""

    async def model_infer(
        _request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return fixed

    method: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        model_infer, request_deserializer=None, response_serializer=None
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": method})


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until SIGINT (how bench/servers.py stops a server),
    then stop at once."""
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stopping.set)
    settings = Settings()
    server = grpc.aio.server(
        options=server_options(settings, reuse_port=False),
        maximum_concurrent_rpcs=settings.grpc.max_concurrent_rpcs,
    )
    server.add_generic_rpc_handlers((handler(answer()),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await stopping.wait()
    await server.stop(None)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, as uvicorn's ``loop="auto"`` picks; else None
    (asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    """Serve until SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()
