"""Triton's ``reshape``: a tensor that clients send and receive with its configured
``dims`` while the model's own shape is another with as many elements (an image model
taking ``[1, 3, 224, 224]`` served as ``[3, 224, 224]``, a classifier answering
``[1, 1000, 1, 1]`` served as ``[1000]``).

The version's backend is wrapped once at load: its signature shows the configured dims
(so requests are checked, batched and described with them), and each call reshapes its
inputs to the model's shapes and its outputs back. A reshape is a view over the same
bytes: nothing is copied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence

from backends.base import Array, Backend, InlineBackend, ModelSignature, TensorSpec
from gateway.repository.declared import Declaration, DeclaredTensor


class ReshapedBackend:
    """``inner`` as clients see it: configured dims in, configured dims out."""

    def __init__(self, inner: Backend, declaration: Declaration) -> None:
        self._inner = inner
        self._batched = declaration.batched
        inputs = {t.name: t for t in declaration.inputs if t.reshape is not None}
        outputs = {t.name: t for t in declaration.outputs if t.reshape is not None}
        self._to_model = {name: _fixed(t.reshape) for name, t in inputs.items()}
        self._to_client = {name: t.dims for name, t in outputs.items()}
        signature = inner.signature
        self._signature = ModelSignature(
            inputs=tuple(self._public(spec, inputs.get(spec.name)) for spec in signature.inputs),
            outputs=tuple(self._public(spec, outputs.get(spec.name)) for spec in signature.outputs),
        )

    @property
    def signature(self) -> ModelSignature:
        """The model's tensors with their configured dims."""
        return self._signature

    @property
    def metadata(self) -> Mapping[str, str]:
        """The wrapped backend's."""
        return self._inner.metadata

    def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> Awaitable[dict[str, Array]]:
        """The wrapped backend's call over the model's shapes, answered in the configured
        dims."""
        return self._answer(self._inner.infer(self._model_inputs(inputs), output_names))

    async def _answer(self, running: Awaitable[dict[str, Array]]) -> dict[str, Array]:
        return self._client_outputs(await running)

    async def close(self) -> None:
        """Close the wrapped backend."""
        await self._inner.close()

    def _public(self, spec: TensorSpec, declared: DeclaredTensor | None) -> TensorSpec:
        if declared is None:
            return spec
        lead = spec.shape[:1] if self._batched else ()
        names = spec.dim_names[:1] if self._batched and spec.dim_names else ()
        dims = tuple(declared.dims)
        return TensorSpec(
            spec.name,
            spec.dtype,
            (*lead, *dims),
            (*names, *(None,) * len(dims)),
            optional=spec.optional,
        )

    def _model_inputs(self, inputs: Mapping[str, Array]) -> Mapping[str, Array]:
        if not self._to_model:
            return inputs
        reshaped = dict(inputs)
        for name, shape in self._to_model.items():
            array = reshaped.get(name)
            if array is not None:
                reshaped[name] = array.reshape(self._with_rows(array, shape))
        return reshaped

    def _client_outputs(self, outputs: dict[str, Array]) -> dict[str, Array]:
        for name, dims in self._to_client.items():
            array = outputs.get(name)
            if array is not None:
                outputs[name] = array.reshape(self._with_rows(array, dims))
        return outputs

    def _with_rows(self, array: Array, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (array.shape[0], *shape) if self._batched else shape


class ReshapedInlineBackend(ReshapedBackend):
    """A ``ReshapedBackend`` over a backend that can also run a call on the event loop."""

    def __init__(self, inner: Backend, declaration: Declaration) -> None:
        assert isinstance(inner, InlineBackend)
        super().__init__(inner, declaration)
        self._inline: InlineBackend = inner

    def infer_now(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        """``infer`` on the calling thread."""
        outputs = self._inline.infer_now(self._model_inputs(inputs), output_names)
        return self._client_outputs(outputs)


def with_reshapes(backend: Backend, declaration: Declaration | None) -> Backend:
    """``backend`` wrapped when ``declaration`` reshapes a tensor; else ``backend``."""
    if declaration is None or not declaration.reshaped:
        return backend
    if isinstance(backend, InlineBackend):
        return ReshapedInlineBackend(backend, declaration)
    return ReshapedBackend(backend, declaration)


def _fixed(shape: tuple[int, ...] | None) -> tuple[int, ...]:
    assert shape is not None  # only reshaped tensors are kept
    return shape
