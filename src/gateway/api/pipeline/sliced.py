"""The pipeline's step for a large body: decoded in slices while the disconnect is watched."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive

from gateway.api.body import ClientDisconnected
from gateway.api.pipeline.disconnect import SteppedWatch, TaskWatch, Watch
from gateway.api.state import AppState
from gateway.batching.observer import BatchTrace
from gateway.dataplane.codecs import RequestCodec, Slicing
from gateway.dataplane.inference import Admission, PendingInference
from gateway.dataplane.sliced import submit_sliced as submit_decoded
from gateway.protocol.sliced_tensor import Abandoned


def _nothing() -> None:
    """The watch's callback: the decode asks ``watch.disconnected`` between slices."""


async def submit_sliced(
    state: AppState,
    codec: RequestCodec,
    admission: Admission,
    body: bytes,
    headers: Mapping[str, str],
    trace: BatchTrace,
    receive: Receive,
    subject: str | None = None,
) -> PendingInference:
    """Decode and queue a large body as ``InferenceService.submit`` does, giving the loop
    back between slices; a client that leaves meanwhile stops the decode
    (``ClientDisconnected``)."""
    settings = state.settings
    watch: Watch = (
        SteppedWatch(receive, _nothing)
        if settings.disconnect_watch == "stepped"
        else TaskWatch(receive, _nothing)
    )
    slicing = Slicing(settings.json_slice_bytes, lambda: watch.disconnected)
    try:
        return await submit_decoded(
            state.inference, codec, admission, body, headers, slicing, trace, subject
        )
    except Abandoned:
        raise ClientDisconnected from None
    finally:
        watch.close()
