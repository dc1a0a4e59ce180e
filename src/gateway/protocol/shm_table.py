"""Triton's shared-memory extensions (system and CUDA): the regions of each caller.

System regions are registered by the token subject that will use them, and only that
subject's requests find them: another caller naming the region is told it does not exist,
as it would be for a name never registered. Every region is closed on unregister and
at shutdown (``close``). CUDA regions need a GPU shared with the client, which tensorgate
does not serve: a registration is refused saying so, while status and unregister answer
as Triton does with none registered (Triton's examples start by unregistering all).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from gateway.errors import InvalidInput, RegionNotFound
from gateway.protocol.shm_regions import SHM_DIRECTORY, RegionSpec, SystemRegion, open_region
from gateway.validation import shown

logger = logging.getLogger(__name__)

Kind = Literal["system", "cuda"]
SharedMemoryAction = Literal["status", "register", "unregister"]

_NO_CUDA = (
    "CUDA shared memory needs a GPU shared with the client, which tensorgate does not "
    "serve; send tensors in the request (binary tensor data over HTTP, raw_input_contents "
    "over gRPC) or register system shared memory"
)


class SharedMemoryTable:
    """The registered regions of every caller, by subject then name."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        max_regions: int = 64,
        max_regions_total: int = 1024,
        max_read_bytes: int = 16 * 1024 * 1024,
        directory: Path = SHM_DIRECTORY,
    ) -> None:
        self.enabled = enabled
        self.max_regions = max_regions
        """The most regions one subject may hold at once."""
        self.max_regions_total = max_regions_total
        """The most regions the server holds at once (each keeps a descriptor open)."""
        self.max_read_bytes = max_read_bytes
        """The most bytes one input may take from a region (what a request body may carry)."""
        self._directory = directory
        self._regions: dict[str, dict[str, SystemRegion]] = {}

    def status(self, kind: Kind, subject: str, name: str | None) -> list[dict[str, object]]:
        """The ``subject``'s regions of ``kind`` (or the one named ``name``)."""
        held = self._regions.get(subject, {}) if kind == "system" else {}
        if not name:
            return [region.spec.status() for region in held.values()]
        region = held.get(name)
        if region is None:
            raise RegionNotFound(f"Unable to find {kind} shared memory region: '{shown(name)}'")
        return [region.spec.status()]

    def register(self, kind: Kind, subject: str, spec: RegionSpec) -> None:
        """Open ``spec`` for ``subject``; ``InvalidInput`` saying why it cannot be."""
        prefix = f"failed to register {kind} shared memory region '{shown(spec.name)}': "
        if kind == "cuda":
            raise InvalidInput(prefix + _NO_CUDA)
        if not self.enabled:
            raise InvalidInput(
                prefix + "system shared memory is off on this server (shared_memory.system); "
                "send tensors in the request"
            )
        if spec.byte_size < 1 or spec.offset < 0:
            raise InvalidInput(
                f"{prefix}invalid args: byte_size must be at least 1 and offset at least 0, "
                f"got byte_size {spec.byte_size}, offset {spec.offset}"
            )
        held = self._regions.setdefault(subject, {})
        if spec.name in held:
            raise InvalidInput(f"shared memory region '{shown(spec.name)}' already in manager")
        if len(held) >= self.max_regions:
            raise InvalidInput(
                f"{prefix}this caller holds {len(held)} regions, the most "
                f"shared_memory.max_regions allows; unregister one first"
            )
        total = sum(len(each) for each in self._regions.values())
        if total >= self.max_regions_total:
            raise InvalidInput(
                f"{prefix}the server holds {total} regions, the most "
                "shared_memory.max_regions_total allows"
            )
        held[spec.name] = open_region(spec, self._directory)
        logger.info("system shared memory region '%s' registered", shown(spec.name))

    def unregister(self, kind: Kind, subject: str, name: str | None) -> None:
        """Close ``name`` (or every region the ``subject`` holds); a name not held is no
        error, as in Triton."""
        if kind == "cuda":
            return
        held = self._regions.get(subject)
        if held is None:
            return
        names = list(held) if not name else [name]
        for each in names:
            region = held.pop(each, None)
            if region is not None:
                region.close()
        if not held:
            del self._regions[subject]

    def part(self, subject: str, name: str, offset: int, byte_size: int) -> SystemRegion:
        """The ``subject``'s region ``name``, checked to hold ``byte_size`` bytes from
        ``offset``: what a request's tensor may read or write."""
        region = self._regions.get(subject, {}).get(name)
        if region is None:
            raise InvalidInput(f"Unable to find shared memory region: '{shown(name)}'")
        size = region.spec.byte_size
        if offset >= size:
            raise InvalidInput(
                f"Invalid offset for shared memory region: '{shown(name)}' (offset {offset}, "
                f"the region holds {size} bytes)"
            )
        if offset + byte_size > size:
            raise InvalidInput(
                f"Invalid offset + byte size for shared memory region: '{shown(name)}' "
                f"({offset} + {byte_size} bytes, the region holds {size})"
            )
        return region

    def registrations(self) -> list[tuple[str, RegionSpec]]:
        """Every region registered, with its subject."""
        return [
            (subject, region.spec)
            for subject, held in self._regions.items()
            for region in held.values()
        ]

    def close(self) -> None:
        """Close every region (at shutdown)."""
        for held in self._regions.values():
            for region in held.values():
                region.close()
        self._regions.clear()
