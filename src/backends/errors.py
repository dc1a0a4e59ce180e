"""Errors raised by execution backends.

    BackendError
    ├── ModelLoadError        the model file is missing, corrupt or unsupported
    └── InferenceError        the runtime failed while running a batch

The gateway turns these into its own domain errors; backends never know about HTTP.
"""


class BackendError(Exception):
    """Base class for every error a backend raises."""


class ModelLoadError(BackendError):
    """A model could not be loaded (missing file, corrupt graph, bad options)."""


class InferenceError(BackendError):
    """The runtime failed while running inference; ``kind`` names the failure class."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
