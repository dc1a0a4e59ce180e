"""Where a model runs, in its ``config.yaml``: the CUDA (and TensorRT) provider's settings
on this machine, or the upstream servers of a remote model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from backends.remote import RemoteOptions
from gateway.repository.section import ConfigSection


class CudaConfig(ConfigSection):
    """Settings of the CUDA (and TensorRT) execution provider, used when it is asked for."""

    device_id: Annotated[int, Field(ge=0, le=63)] = 0
    """The GPU the model runs on."""
    memory_limit_mb: Annotated[int, Field(ge=1)] | None = None
    """Most GPU memory ONNX Runtime's arena may take for this model; none: no limit."""
    arena_extend_strategy: Literal["next_power_of_two", "same_as_requested"] = "next_power_of_two"
    """How the arena grows: by powers of two (fewer, larger allocations) or by exactly
    what is asked (less memory held)."""
    cudnn_conv_algo_search: Literal["exhaustive", "heuristic", "default"] = "exhaustive"
    """How cuDNN picks convolution algorithms: ``exhaustive`` benchmarks them on first use
    (slower first calls, so warm up), ``heuristic`` guesses, ``default`` takes the first."""
    io_binding: bool = False
    """Run batches through ONNX Runtime's I/O binding: inputs bound from host memory,
    outputs into host memory, without the intermediate copies of a plain run."""

    def provider_options(self) -> dict[str, dict[str, str]]:
        """ONNX Runtime's provider options for CUDA and TensorRT."""
        cuda = {
            "device_id": str(self.device_id),
            "arena_extend_strategy": (
                "kNextPowerOfTwo"
                if self.arena_extend_strategy == "next_power_of_two"
                else "kSameAsRequested"
            ),
            "cudnn_conv_algo_search": self.cudnn_conv_algo_search.upper(),
        }
        if self.memory_limit_mb is not None:
            cuda["gpu_mem_limit"] = str(self.memory_limit_mb * 1024 * 1024)
        return {
            "CUDAExecutionProvider": cuda,
            "TensorrtExecutionProvider": {"device_id": str(self.device_id)},
        }


class RemoteTls(ConfigSection):
    """TLS toward the upstream: a CA to trust, and a client certificate for mutual TLS."""

    ca_file: str | None = None
    """PEM bundle of the CAs the upstream's certificate must chain to (default: the
    system's)."""
    cert_file: str | None = None
    """PEM client certificate presented to the upstream."""
    key_file: str | None = None
    """PEM private key of ``cert_file``."""


class RemoteConfig(ConfigSection):
    """A model served by an upstream Open Inference Protocol server (docs/operations.md)."""

    urls: Annotated[list[Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]], Field(min_length=1)]
    """Upstream base URLs (``http://host:port``): one address (a Service or a load
    balancer spreads the load) or every replica."""
    model: str | None = None
    """The model's name upstream; default: the same name as here."""
    version: str | None = None
    """The upstream version to call; default: the upstream's own choice."""
    wire: Literal["binary", "json"] = "binary"
    """Tensors on the wire: Triton's binary tensor extension, or JSON."""
    token_env: str | None = None
    """Environment variable holding the bearer token sent upstream (never in this file)."""
    token_file: str | None = None
    """File holding the bearer token sent upstream (a mounted secret)."""
    tls: RemoteTls = Field(default_factory=RemoteTls)
    """TLS toward the upstream."""
    connect_timeout_ms: Annotated[float, Field(gt=0, le=60_000)] = 1000.0
    """Longest wait for a connection to a replica; then the next replica is tried."""
    timeout_ms: Annotated[float, Field(gt=0)] = 30_000.0
    """Longest call when the batch carries no deadline (requests with none)."""
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 64
    """Connections kept to each replica."""
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    """Failures in a row that open a replica's circuit."""
    open_ms: Annotated[float, Field(gt=0)] = 5000.0
    """How long an open circuit keeps a replica out before one trial batch."""
    health_interval_ms: Annotated[float, Field(gt=0)] = 2000.0
    """How often each replica's readiness is asked."""

    def options(self, model: str) -> RemoteOptions:
        """The backend's options, ``model`` the name here."""
        return RemoteOptions(
            urls=tuple(url.rstrip("/") for url in self.urls),
            model=self.model or model,
            version=self.version,
            wire=self.wire,
            token_env=self.token_env,
            token_file=self.token_file,
            ca_file=self.tls.ca_file,
            cert_file=self.tls.cert_file,
            key_file=self.tls.key_file,
            connect_timeout_s=self.connect_timeout_ms / 1000,
            timeout_s=self.timeout_ms / 1000,
            max_connections=self.max_connections,
            failure_threshold=self.failure_threshold,
            open_s=self.open_ms / 1000,
            health_interval_s=self.health_interval_ms / 1000,
        )
