"""The binary tensor data rows of ``make bench``: the same model and input sent as JSON, as
binary (Triton's binary tensor extension, as ``tritonclient.http`` sends by default) and
as unary gRPC calls (bench/grpc_rows.py), alternating in every round, against one
tensorgate server; on ``mlp`` the gRPC floor (bench/floor_grpc.py) takes its turn too, on
``image`` the input left in shared memory (bench/shm_rows.py).

``image`` is generated here: float32 [batch, 3, 224, 224] -> global average pool -> a
3 x 10 dense layer, so the cost that differs between the two rows (reading 150,528 numbers
per request) is most of the request's cost.

Connections: ``mlp`` runs at 1 and 64, ``image`` at 1, 16 and 64, every row of its rounds
at each. Issue 22 judges shared memory against binary HTTP at 1 and 16 concurrent clients;
the binary target and the tables read 1 and 64. Running all of ``image``'s rows at the
three counts is the simpler choice: a round's rows are the same at every count, and every
row can be read at every count. Giving 16 to the shared-memory and binary rows alone would
save the JSON and gRPC runs at 16 (two runs of 2 s a round) at the cost of rows that
depend on the count.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from alternating import alternating
from grpc_rows import check_answer, check_floor, floor_run, grpc_run, write_frame
from h2load import GRPC_HEADERS
from progress import Progress
from results import BINARY as BINARY_ROW
from results import BINARY_JSON as JSON_ROW
from results import GRPC as GRPC_ROW
from results import GRPC_FLOOR, Measurement
from results import SHM as SHM_ROW
from servers import Server
from shm_rows import SHM_HEADERS, shared_input
from wrk import WrkResult, run_wrk

IMAGE_SHAPE = (3, 224, 224)
IMAGE_CONFIG = "execution_providers: [cpu]\nintra_op_threads: 1\n"
BINARY_MODELS = {"mlp": ("input", (256,)), "image": ("image", IMAGE_SHAPE)}
BINARY_CONNECTIONS = (1, 64)
IMAGE_CONNECTIONS = (1, 16, 64)
"""``image``'s connection counts (see above): issue 22's 1 and 16, and the 64 of the
others."""
ROWS = (JSON_ROW, BINARY_ROW, GRPC_ROW)
"""The variants taking turns in each round, in their order."""
FLOOR_MODEL = "mlp"
"""The model whose rounds the gRPC floor joins (its fixed answer is one ``mlp`` row)."""
SHM_MODEL = "image"
"""The model whose rounds the shared-memory row joins (issue 22's model)."""


def rows_of(model: str) -> tuple[str, ...]:
    """The variants taking turns in ``model``'s rounds."""
    if model == FLOOR_MODEL:
        return (*ROWS, GRPC_FLOOR)
    if model == SHM_MODEL:
        return (*ROWS, SHM_ROW)
    return ROWS


def connections_of(model: str) -> tuple[int, ...]:
    """The connection counts of ``model``'s rounds."""
    return IMAGE_CONNECTIONS if model == SHM_MODEL else BINARY_CONNECTIONS


@dataclass(frozen=True)
class Body:
    """One request body on disk and the headers it is sent with."""

    path: Path
    headers: dict[str, str]


def build_image(directory: Path) -> None:
    """Write the ``image`` model (fixed seed) and its config into a model directory."""
    rng = np.random.default_rng(20261130)
    weight = numpy_helper.from_array(rng.standard_normal((10, 3)).astype(np.float32), "fc.weight")
    bias = numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", *IMAGE_SHAPE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (directory / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / "1" / "model.onnx"))
    (directory / "config.yaml").write_text(IMAGE_CONFIG)


def make_bodies(work: Path) -> dict[tuple[str, str], Body]:
    """A JSON body, a binary body and a gRPC message per model, carrying the same numbers;
    the binary one also asks for binary outputs, as the Triton client does when no output
    is named."""
    rng = np.random.default_rng(2)
    bodies: dict[tuple[str, str], Body] = {}
    for model, (name, row_shape) in BINARY_MODELS.items():
        numbers = rng.uniform(0, 1, (1, *row_shape)).round(6)  # six digits, as clients send
        array = numbers.astype(np.float32)
        shape = list(array.shape)
        as_json = {
            "inputs": [
                {"name": name, "shape": shape, "datatype": "FP32", "data": numbers.ravel().tolist()}
            ]
        }
        json_path = work / f"{model}-oip.json"
        json_path.write_text(json.dumps(as_json))
        bodies[(model, JSON_ROW)] = Body(json_path, {"Content-Type": "application/json"})
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": name,
                        "shape": shape,
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": array.nbytes},
                    }
                ],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        binary_path = work / f"{model}-oip.bin"
        binary_path.write_bytes(header + array.tobytes())
        bodies[(model, BINARY_ROW)] = Body(
            binary_path,
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
            },
        )
        grpc_path = work / f"{model}-oip.grpc"
        write_frame(grpc_path, model, name, array)
        bodies[(model, GRPC_ROW)] = Body(grpc_path, GRPC_HEADERS)
    return bodies


def binary_matrix(
    server: Server,
    grpc_floor: Server,
    bodies: dict[tuple[str, str], Body],
    work: Path,
    seconds: int,
    rounds: int,
    progress: Progress,
    grpc_failures: Counter[str],
) -> list[Measurement]:
    """wrk with each body and h2load with the gRPC message at each of the model's
    connection counts (``connections_of``); the model's rows (``rows_of``) take turns in
    every round, and each figure is the median over the rounds. gRPC calls that were not
    OK are added to ``grpc_failures`` by status. On ``mlp``, h2load sends the same message
    to ``grpc_floor`` in the same rounds; on ``image``, wrk sends the shared-memory body,
    its region registered for these rounds only."""
    bodies = dict(bodies)

    def run(model: str, row: str, conns: int) -> Callable[[], WrkResult]:
        if row == GRPC_FLOOR:
            return floor_run(grpc_floor, bodies[(model, GRPC_ROW)].path, conns, seconds, work)
        body = bodies[(model, row)]
        if row == GRPC_ROW:
            return grpc_run(server, model, body.path, conns, seconds, work, grpc_failures)
        url = f"{server.base}/v2/models/{model}/infer"
        return lambda: run_wrk(
            url, body.path, conns, seconds, work, send_token=True, headers=body.headers
        )

    results: list[Measurement] = []
    for model in BINARY_MODELS:
        frame = bodies[(model, GRPC_ROW)].path
        check_answer(server, model, frame, bodies[(model, JSON_ROW)].path)
        if GRPC_FLOOR in rows_of(model):
            check_floor(grpc_floor, server, frame)
        with contextlib.ExitStack() as regions:
            if SHM_ROW in rows_of(model):
                binary = bodies[(model, BINARY_ROW)]
                shared = shared_input(server, model, binary.path, binary.headers, work)
                bodies[(model, SHM_ROW)] = Body(regions.enter_context(shared), SHM_HEADERS)
            for conns in connections_of(model):
                variants = {row: run(model, row, conns) for row in rows_of(model)}
                results += alternating(variants, model, conns, rounds, progress)
    return results


def run_count(rounds: int) -> int:
    """How many wrk and h2load runs ``binary_matrix`` makes (for the progress bar)."""
    return rounds * sum(len(connections_of(m)) * len(rows_of(m)) for m in BINARY_MODELS)
