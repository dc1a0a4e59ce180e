"""The fixed naive baseline: one FastAPI route, a Pydantic body, one ORT call each.

This is the tutorial server the issue compares against; do not optimise it. By default
its route is ``async def``, so ONNX Runtime runs on the event loop; ``--thread`` makes it
a plain ``def`` route, which FastAPI runs in its threadpool (the other tutorial answer).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Features(BaseModel):
    """Request body: a batch of feature rows."""

    x: list[list[float]]


def build(model_path: str, *, thread: bool = False) -> FastAPI:
    """The app serving ``model_path`` at ``POST /predict``; ``thread``: ONNX Runtime runs
    in FastAPI's threadpool instead of on the event loop."""
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    app = FastAPI()

    if thread:

        @app.post("/predict")
        def predict_in_thread(features: Features) -> dict[str, Any]:
            # A plain def route: FastAPI calls it in its threadpool.
            outputs = session.run(None, {input_name: np.asarray(features.x, dtype=np.float32)})
            return {"y": outputs[0].tolist()}

    else:

        @app.post("/predict")
        async def predict(features: Features) -> dict[str, Any]:
            outputs = session.run(None, {input_name: np.asarray(features.x, dtype=np.float32)})
            return {"y": outputs[0].tolist()}

    return app


def main() -> None:
    """Serve one model on 127.0.0.1 with one uvicorn worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--thread", action="store_true", help="a def route: ORT in FastAPI's threadpool"
    )
    args = parser.parse_args()
    uvicorn.run(
        build(args.model, thread=args.thread), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
