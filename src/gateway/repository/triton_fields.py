"""Reading the fields of a Triton configuration in protobuf's JSON form: lists, objects,
whole numbers (64-bit ones arrive as strings) and dims, each failure naming the field."""

from __future__ import annotations

from typing import Any


class TritonConfigError(ValueError):
    """A configuration field tensorgate cannot honour; the message names it and says why."""


def list_field(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise TritonConfigError(f"{path} must be a list")
    return value


def object_field(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TritonConfigError(f"{path} must be an object")
    return value


def integer(value: Any, path: str) -> int:
    """An integer field; protobuf's JSON form writes 64-bit ones as strings (``"2000"``)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TritonConfigError(f"{path} must be a whole number, got {value!r}")


def shape_field(value: Any, path: str) -> tuple[int, ...]:
    return tuple(signed(d, path) for d in list_field(value, path))


def signed(value: Any, path: str) -> int:
    if isinstance(value, str) and value.startswith("-"):
        return -integer(value[1:], path)
    number = integer(value, path) if not (isinstance(value, int) and value < 0) else value
    if number < -1:
        raise TritonConfigError(f"{path}: {number} is not a dimension (-1 for any size)")
    return number
