"""The Backend protocol and the description of a model's tensors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from backends.remote import RemoteOptions

Array = npt.NDArray[np.generic]

STRING_DTYPE = np.dtype(np.object_)
"""String tensors travel as numpy object arrays of ``str``, as ONNX Runtime expects."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output of a model: name, element type and shape.

    ``shape`` holds ``None`` for a dynamic dimension; ``dim_names`` keeps the symbolic
    name ONNX gave that dimension (``"batch"``) or ``None``.
    """

    name: str
    dtype: np.dtype[np.generic]
    shape: tuple[int | None, ...]
    dim_names: tuple[str | None, ...] = ()
    optional: bool = False
    """An input a request may leave out (ONNX: an initializer the graph also lists as an
    input, which ONNX Runtime lets a feed override); the model's default value is used."""

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def has_dynamic_batch(self) -> bool:
        """True when the first dimension is dynamic, so requests can be stacked on it."""
        return self.rank > 0 and self.shape[0] is None


@dataclass(frozen=True, slots=True)
class ModelSignature:
    """The inputs and outputs of a loaded model, in the order the model declares them."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # Name lookups happen on every request: index once.
    _inputs_by_name: Mapping[str, TensorSpec] = field(init=False, repr=False, compare=False)
    _outputs_by_name: Mapping[str, TensorSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inputs_by_name", {s.name: s for s in self.inputs})
        object.__setattr__(self, "_outputs_by_name", {s.name: s for s in self.outputs})

    def input(self, name: str) -> TensorSpec | None:
        """The input called ``name``, or None."""
        return self._inputs_by_name.get(name)

    def output(self, name: str) -> TensorSpec | None:
        """The output called ``name``, or None."""
        return self._outputs_by_name.get(name)


CALL_TIMEOUT_S: ContextVar[float | None] = ContextVar("call_timeout_s", default=None)
"""Seconds until the caller of the batch being started gives up (the latest deadline of
its requests), set around ``Backend.infer``; None: no deadline. A backend whose call can
outlive it (a remote one) bounds the call by it."""


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How a backend should run a model; filled from the model's config file."""

    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization_level: str = "all"
    instances: int = 1
    extra: Mapping[str, str] = field(default_factory=dict)
    """Runtime-specific session settings (ONNX Runtime: session config entries)."""
    provider_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Options by execution provider name (ONNX Runtime's provider options)."""
    require_provider: bool = False
    """Fail the load when the first execution provider asked for cannot be used, instead
    of running on the next one (the CPU at last) with a warning."""
    io_binding: bool = False
    """Run each batch through ONNX Runtime's I/O binding."""
    remote: RemoteOptions | None = None
    """Set: the model runs on an upstream server, not in this process."""
    optional_inputs: tuple[str, ...] = ()
    """Inputs a request may leave out (ONNX Runtime: overridable initializers); any other
    the model has beside its required inputs is not shown."""


@runtime_checkable
class Backend(Protocol):
    """A loaded model that can run inference.

    Contract for ``infer``:
    - ``inputs`` maps every input name of ``signature`` to a numpy array whose dtype is
      the spec's dtype and whose shape matches the spec (dynamic dims any size >= 0);
      callers validate before calling.
    - ``output_names`` selects outputs; ``None`` means all, in signature order.
    - Returns a dict of output name -> numpy array; the batch axis (axis 0) of each
      output has the same length as the inputs' batch axis when the model has one.
    - It returns an awaitable (a coroutine, or a future when the call is started at once,
      as the ONNX Runtime backend does so that a batch starts in the loop turn that
      formed it). The blocking runtime call runs on the backend's own bounded thread
      pool, never on the event loop. Up to ``RuntimeOptions.instances`` calls run
      concurrently; further calls wait for a free worker.
    - The awaitable raises ``InferenceError`` when the runtime fails; the backend stays
      usable.
    """

    @property
    def signature(self) -> ModelSignature:
        """Inputs and outputs of the model."""
        ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """Facts worth showing users, such as the execution provider actually in use."""
        ...

    def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> Awaitable[dict[str, Array]]:
        """Run the model on one batch; see the class docstring for the contract."""
        ...

    async def close(self) -> None:
        """Release the runtime session and the worker threads; idempotent."""
        ...


@runtime_checkable
class InlineBackend(Protocol):
    """A backend that can also run a batch on the calling thread (ONNX Runtime can; a
    remote one cannot: its calls wait on the network)."""

    def infer_now(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        """``infer``'s contract, run on the calling thread and blocking it; raises
        ``InferenceError`` when the runtime fails."""
        ...


InlineInfer = Callable[[Mapping[str, Array], Sequence[str]], dict[str, Array]]


def inline_infer(backend: object) -> InlineInfer | None:
    """``backend.infer_now`` when it has one (checked once, when a version loads)."""
    return backend.infer_now if isinstance(backend, InlineBackend) else None
