"""The soak's request kinds: each model through the protocol's JSON body, its binary
tensor extension and the typed route, as whole HTTP/1.1 requests built once per caller."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

REMOTE_MODEL = "remote-mlp"
"""The repository's remote model: ``mlp`` served by the upstream tensorgate."""
INPUTS = {"mlp": ("input", 256), "digits": ("pixels", 64), REMOTE_MODEL: ("input", 256)}


@dataclass(frozen=True)
class Kind:
    """One sort of request: its label, the model it names, its path, body and headers."""

    label: str
    model: str
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def remote(self) -> bool:
        """Served by the remote upstream (whose outage has its own documented errors)."""
        return self.model == REMOTE_MODEL

    def request(self, port: int, token: str) -> bytes:
        """The whole request, head and body, with ``token``."""
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Authorization: Bearer {token}",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body


def _json(model: str, name: str, row: list[float]) -> Kind:
    envelope = {"inputs": [{"name": name, "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
    return Kind(
        f"json {model}",
        model,
        f"/v2/models/{model}/infer",
        json.dumps(envelope).encode(),
        (("Content-Type", "application/json"),),
    )


def _binary(model: str, name: str, row: list[float]) -> Kind:
    """Triton's binary tensor data extension, binary outputs asked for (as tritonclient)."""
    data = np.asarray([row], np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [1, len(row)],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(data)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return Kind(
        f"binary {model}",
        model,
        f"/v2/models/{model}/infer",
        header + data,
        (
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", str(len(header))),
        ),
    )


def _typed(model: str, name: str, row: list[float]) -> Kind:
    return Kind(
        f"typed {model}",
        model,
        f"/models/{model}/predict",
        json.dumps({"inputs": {name: [row]}}).encode(),
        (("Content-Type", "application/json"),),
    )


def kinds() -> list[Kind]:
    """Every kind the soak's clients send, in the order each connection takes them."""
    rng = np.random.default_rng(5)
    found: list[Kind] = []
    for model, (name, width) in INPUTS.items():
        row = [round(float(v), 6) for v in rng.uniform(0, 1, width)]
        found += [_json(model, name, row), _typed(model, name, row)]
        if model != "digits":
            found.append(_binary(model, name, row))
    return found
