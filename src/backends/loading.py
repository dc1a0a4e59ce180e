"""The one loader the gateway uses: a remote model when its options name an upstream,
ONNX Runtime otherwise."""

from __future__ import annotations

from pathlib import Path

from backends.base import Backend, RuntimeOptions
from backends.onnxruntime import OnnxRuntimeBackend
from backends.remote import RemoteBackend


def load_backend(path: Path, options: RuntimeOptions, name: str) -> Backend:
    """Load ``path`` (blocking: call it in a thread); a remote model has no file."""
    if options.remote is not None:
        return RemoteBackend.load(options.remote)
    return OnnxRuntimeBackend.load(path, options, name)
