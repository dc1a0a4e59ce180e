"""System shared-memory regions: a POSIX shared-memory object opened by its key.

A client on the same host creates an object (``shm_open``: a file of ``/dev/shm``),
writes its input tensors there and registers the object's key with an offset and a byte
size under a name; inference requests then name the region instead of carrying the bytes.
The key is checked as ``shm_open`` reads it (leading slashes dropped, then one file name),
and the file is opened without following a symlink and must be a regular file that holds
the whole region: a key cannot reach anything outside ``/dev/shm``.

Inputs are copied out of the region when the request is decoded: the client may write the
region again at any time, and a tensor checked (finite floats, UTF-8 text) must be the
tensor the model runs on.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import InvalidInput
from gateway.validation import shown

SHM_DIRECTORY = Path("/dev/shm")
_NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """What a registration names: the region's name, the object's key, and the part of
    the object that is the region."""

    name: str
    key: str
    offset: int
    byte_size: int

    def status(self) -> dict[str, object]:
        """The region as Triton's status answers list it."""
        return {
            "name": self.name,
            "key": self.key,
            "offset": self.offset,
            "byte_size": self.byte_size,
        }


class SystemRegion:
    """A registered region: the object's descriptor, open until ``close``.

    Tensors are read and written with ``pread`` and ``pwrite`` rather than through a
    mapping: a client that truncates its object after registering it then gets a short
    read (an error naming the region), where a mapping would kill the server with SIGBUS.
    """

    __slots__ = ("_descriptor", "spec")

    def __init__(self, spec: RegionSpec, descriptor: int) -> None:
        self.spec = spec
        self._descriptor: int | None = descriptor

    def read(self, offset: int, byte_size: int) -> memoryview:
        """A copy of ``byte_size`` bytes from ``offset`` in the region (bounds checked by
        the caller, ``SharedMemoryTable.part``)."""
        data = os.pread(self._live(), byte_size, self.spec.offset + offset)
        if len(data) != byte_size:
            raise InvalidInput(
                f"shared memory region '{shown(self.spec.name)}' holds fewer bytes than it was "
                f"registered with: its object '{shown(self.spec.key)}' was truncated"
            )
        return memoryview(data)

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` in the region (bounds checked by the caller)."""
        view, at = memoryview(data), self.spec.offset + offset
        while view:
            written = os.pwrite(self._live(), view, at)
            view, at = view[written:], at + written

    def _live(self) -> int:
        if self._descriptor is None:
            raise InvalidInput(
                f"shared memory region '{shown(self.spec.name)}' was unregistered while the "
                "request used it"
            )
        return self._descriptor

    def close(self) -> None:
        """Close the object; a request still holding the region then gets a clear error."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def object_path(key: str, directory: Path = SHM_DIRECTORY, prefix: str = "") -> Path:
    """The file ``shm_open(key)`` opens: leading slashes dropped, then a single name
    (``InvalidInput`` starting with ``prefix`` otherwise)."""
    name = key.lstrip("/")
    encoded = name.encode("utf-8", "replace")  # a lone surrogate names no file: refused
    if (
        not name
        or "/" in name
        or "\0" in name
        or name in (".", "..")
        or len(encoded) > _NAME_MAX
        or encoded.decode("utf-8") != name
    ):
        raise InvalidInput(
            f"{prefix}shared memory key '{shown(key[:80])}' is not a shared memory object's name: "
            "expected '/name' (one name of at most 255 bytes, no other '/')"
        )
    return directory / name


def open_region(spec: RegionSpec, directory: Path = SHM_DIRECTORY) -> SystemRegion:
    """Open the region ``spec`` names; ``InvalidInput`` naming the region when the object
    is missing, not a regular file, or smaller than ``offset + byte_size``."""
    prefix = f"failed to register system shared memory region '{shown(spec.name)}': "
    path = object_path(spec.key, directory, prefix)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise InvalidInput(
            f"{prefix}Unable to open shared memory region: '{shown(spec.key)}' "
            f"({os.strerror(exc.errno or 0).lower()})"
        ) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{prefix}'{shown(spec.key)}' is not a shared memory object")
        end = spec.offset + spec.byte_size
        if end > info.st_size:
            raise InvalidInput(
                f"{prefix}invalid args: offset {spec.offset} + byte_size {spec.byte_size} "
                f"runs past the end of '{shown(spec.key)}' ({info.st_size} bytes)"
            )
    except BaseException:
        os.close(descriptor)
        raise
    os.set_blocking(descriptor, True)
    return SystemRegion(spec, descriptor)
