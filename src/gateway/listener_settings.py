"""The settings of what a serving process listens with besides its HTTP port: TLS (both
transports) and the gRPC server (docs/grpc.md#settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class TlsSettings(BaseModel):
    """HTTPS (and gRPC over TLS): a certificate and key turn it on; a client CA also
    requires client certificates (mutual TLS). docs/operations.md#tls."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    certfile: Path | None = None
    """PEM certificate chain the server presents (``TENSORGATE_TLS__CERTFILE``)."""
    keyfile: Path | None = None
    """PEM private key of that certificate (``TENSORGATE_TLS__KEYFILE``)."""
    keyfile_password: SecretStr | None = None
    """Password of an encrypted private key."""
    client_ca: Path | None = None
    """PEM bundle of the CAs whose client certificates are accepted; set, every client
    must present one (mutual TLS)."""

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("tls.certfile and tls.keyfile go together: set both or neither")
        if self.client_ca is not None and self.certfile is None:
            raise ValueError("tls.client_ca (mutual TLS) needs tls.certfile and tls.keyfile")
        return self

    @property
    def enabled(self) -> bool:
        """True when the server speaks HTTPS."""
        return self.certfile is not None


class GrpcSettings(BaseModel):
    """The Open Inference Protocol's gRPC service (``TENSORGATE_GRPC__*``); its largest
    message is ``max_request_body_bytes``, its TLS the ``tls.*`` settings."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    port: Annotated[int, Field(ge=0, le=65535)] = 8001
    """Port of the gRPC service, on the HTTP ``host`` (``--grpc-port``); 0 turns it off.
    With several workers every worker listens on it (``SO_REUSEPORT``)."""
    max_concurrent_streams: Annotated[int, Field(ge=1, le=65536)] = 128
    """Calls one connection may have open at once (HTTP/2 ``MAX_CONCURRENT_STREAMS``)."""
    max_concurrent_rpcs: Annotated[int, Field(ge=1)] = 4096
    """Calls one serving process answers at once, all connections together; past it a
    new call is refused with ``RESOURCE_EXHAUSTED``."""
    stream_max_in_flight: Annotated[int, Field(ge=1, le=4096)] = 64
    """Requests of one ``ModelStreamInfer`` stream in progress at once; the stream is read
    no further until the oldest is answered (answers go out in request order)."""
    keepalive_time_s: Annotated[float, Field(gt=0)] = 60.0
    """The server pings a connection silent for this long, to find dead peers."""
    keepalive_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    """A ping not acknowledged within this long closes the connection."""
    max_connection_idle_s: Annotated[float, Field(gt=0)] = 600.0
    """A connection with no call for this long is closed (with a GOAWAY: clients
    reconnect when they next call)."""
    max_connection_age_s: Annotated[float, Field(gt=0)] | None = None
    """Close connections older than this (calls in progress get ``shutdown_grace_s``), so
    that clients reconnect and spread over new replicas; none: never."""
