"""Pydantic validation errors as one line a client can act on, the same everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Location = tuple[int | str, ...]
NameAt = Callable[[Location], str | None]
"""Names the item at a location ending in a list index (an input's name), or None."""

MAX_REPORTED = 5
_SHOWN_CHARS = 32


def shown(text: str) -> str:
    """``text`` as a message may quote it: cut short, non-ASCII and controls escaped, so
    that a client's string (a lone surrogate, a newline) never reaches an encoder or a
    log line as it came."""
    cut = text[:_SHOWN_CHARS]
    escaped = cut.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return escaped + ("..." if len(text) > _SHOWN_CHARS else "")


def describe_location(loc: Iterable[int | str], name_at: NameAt | None = None) -> str:
    """``inputs[0] (pixels).shape[1]``: indexes in brackets, fields joined by dots."""
    where = ""
    seen: list[int | str] = []
    for part in loc:
        seen.append(part)
        if isinstance(part, int):
            where += f"[{part}]"
            name = name_at(tuple(seen)) if name_at is not None else None
            where += f" ({name})" if name else ""
        else:
            where += f".{part}" if where else str(part)
    return where


def describe_errors(
    errors: Iterable[Mapping[str, Any]],
    *,
    empty: str = "request",
    name_at: NameAt | None = None,
) -> str:
    """``where: message; ...`` for the first ``MAX_REPORTED`` errors; ``empty`` names an
    error without a location."""
    parts: list[str] = []
    for item in errors:
        if len(parts) == MAX_REPORTED:
            break
        where = describe_location(item.get("loc", ()), name_at) or empty
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)
