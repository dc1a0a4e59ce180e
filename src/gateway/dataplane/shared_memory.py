"""Triton's shared-memory extensions (system and CUDA), as far as tensorgate serves them:
no region can be registered yet, so a status lists none, a region asked for by name is
not found, and unregistering (one region or all) succeeds with nothing to do, as Triton
answers when nothing is registered. A registration is refused saying why. Triton's
shared-memory examples start by unregistering everything, so they get as far as their
first registration and stop there with that message.
"""

from __future__ import annotations

from typing import Literal

from gateway.errors import InvalidInput, RegionNotFound
from gateway.validation import shown

Kind = Literal["system", "cuda"]
SharedMemoryAction = Literal["status", "register", "unregister"]

_WHY_NOT = {
    "system": "system shared memory is not served yet",
    "cuda": "CUDA shared memory needs a GPU shared with the client, which tensorgate does "
    "not serve",
}


def region_status(kind: Kind, name: str | None) -> list[dict[str, object]]:
    """The registered regions of ``kind`` (or the one named ``name``): none."""
    if name:
        raise RegionNotFound(f"Unable to find {kind} shared memory region: '{shown(name)}'")
    return []


def unregister(kind: Kind, name: str | None) -> None:
    """Unregister ``name`` (or every region of ``kind``): nothing is registered, so, as in
    Triton for a name it does not hold, nothing to do."""
    del kind, name


def refuse_registration(kind: Kind, name: str) -> InvalidInput:
    """The error a registration of ``name`` gets."""
    return InvalidInput(
        f"failed to register {kind} shared memory region '{shown(name)}': {_WHY_NOT[kind]}; "
        "send tensors in the request (binary tensor data over HTTP, raw_input_contents "
        "over gRPC)"
    )
