"""Tensors in system shared memory: the ``shared_memory_region``, ``shared_memory_byte_size``
and ``shared_memory_offset`` parameters of an input or an output, on every transport.

An input so named is read (copied) from the caller's region instead of the body; an output
so named is written there and its answer carries only its datatype, shape and the bytes
written. The regions are the caller's own (``gateway.protocol.shm_table``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.base import Array
from backends.datatypes import from_numpy
from gateway.errors import InvalidInput, PayloadTooLarge
from gateway.protocol.shm_regions import SystemRegion
from gateway.protocol.shm_table import SharedMemoryTable
from gateway.protocol.wire import RequestOutput
from gateway.validation import shown

Callers = tuple[SharedMemoryTable | None, str | None]
"""The regions a request may name: the process's table and the caller's subject."""

REGION = "shared_memory_region"
BYTE_SIZE = "shared_memory_byte_size"
OFFSET = "shared_memory_offset"


@dataclass(frozen=True, slots=True)
class RegionPart:
    """The part of a region one tensor names."""

    region: SystemRegion
    offset: int
    byte_size: int

    def read(self) -> memoryview:
        """The tensor's bytes, copied out of the region."""
        return self.region.read(self.offset, self.byte_size)

    def write(self, output: str, data: bytes) -> None:
        """Write an output's bytes; ``InvalidInput`` when they do not fit."""
        if len(data) > self.byte_size:
            raise InvalidInput(
                f"shared memory size specified with the request for output '{shown(output)}' "
                f"({self.byte_size} bytes) should be at least {len(data)} bytes to hold the "
                "results"
            )
        self.region.write(self.offset, data)


def _integer(parameters: Mapping[str, Any], key: str, where: str, default: int | None) -> int:
    value = parameters.get(key, default)
    if type(value) is not int or value < 0:
        expected = (
            "required with shared_memory_region"
            if value is None
            else "got " + shown(repr(value)[:40])
        )
        raise InvalidInput(f"{where}: parameters.{key} must be a non-negative integer ({expected})")
    return value


def region_part(parameters: Mapping[str, Any], callers: Callers, where: str) -> RegionPart:
    """The region part a tensor's ``parameters`` name (``where`` names the tensor), among
    the ``callers``' regions."""
    name = parameters[REGION]
    if not isinstance(name, str) or not name:
        raise InvalidInput(
            f"{where}: parameters.{REGION} must be a region's name, got {shown(repr(name)[:40])}"
        )
    byte_size = _integer(parameters, BYTE_SIZE, where, None)
    offset = _integer(parameters, OFFSET, where, 0)
    table, subject = callers
    if table is None or subject is None:  # no table, or no caller: none is registered
        raise InvalidInput(f"Unable to find shared memory region: '{shown(name)}'")
    region = table.part(subject, name, offset, byte_size)
    return RegionPart(region, offset, byte_size)


def input_bytes(parameters: Mapping[str, Any], callers: Callers, name: str) -> memoryview:
    """An input's bytes read from the region its ``parameters`` name, within the bound of
    what one request body may carry."""
    part = region_part(parameters, callers, f"input '{shown(name)}'")
    table = callers[0]
    most = table.max_read_bytes if table is not None else 0
    if part.byte_size > most:
        raise PayloadTooLarge(
            f"input '{shown(name)}': shared_memory_byte_size {part.byte_size} is over "
            f"{most} bytes, the most a request may carry (max_request_body_bytes)"
        )
    return part.read()


def output_regions(
    requested: Sequence[RequestOutput] | None, callers: Callers
) -> dict[str, RegionPart]:
    """The outputs to write to shared memory, by name; an output asking for binary data or
    classification as well is refused (neither has a meaning in a region)."""
    parts: dict[str, RegionPart] = {}
    for out in requested or ():
        parameters = out.parameters
        if not parameters or REGION not in parameters:
            continue
        for other in ("binary_data", "classification"):
            if parameters.get(other):
                raise InvalidInput(
                    f"output '{shown(out.name)}': Output can't set both '{REGION}' and '{other}'"
                )
        parts[out.name] = region_part(parameters, callers, f"output '{shown(out.name)}'")
    return parts


def names_regions(requested: Sequence[RequestOutput] | None) -> bool:
    """Whether any of the ``requested`` outputs names a region."""
    return any(out.parameters and REGION in out.parameters for out in requested or ())


def written_output(name: str, array: Array, data: bytes, part: RegionPart) -> dict[str, Any]:
    """Write ``data`` (``array``'s bytes) to ``part``; the output as the answer describes it."""
    part.write(name, data)
    return {
        "name": name,
        "datatype": from_numpy(array.dtype),
        "shape": list(array.shape),
        "parameters": {REGION: part.region.spec.name, BYTE_SIZE: len(data)},
    }
