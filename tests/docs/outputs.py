"""Comparing what a doc block printed with the output its page shows.

The normalisations are few and explicit (tests/docs/README.md): timestamps, request ids,
UUIDs and JWTs become placeholders; numbers with more than 4 decimals are rounded to 4;
JSON on both sides compares as values; otherwise runs of whitespace compare equal, so do
spaces around JSON punctuation, and ``...`` in the page matches any text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDERS = (
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"), "<jwt>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<request-id>"),
)
_LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?:[eE][-+]?\d+)?")
_SPACE = re.compile(r"\s+")
_AROUND_PUNCTUATION = re.compile(r"\s*([{}\[\]:,])\s*")
ELLIPSIS = "..."


def _round(match: re.Match[str]) -> str:
    return f"{float(match.group(0)):.4f}"


def normalise(text: str) -> str:
    """``text`` with the placeholders in and long numbers rounded."""
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return _LONG_NUMBER.sub(_round, text)


def _as_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _flat(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return _AROUND_PUNCTUATION.sub(r"\1", text)


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` (a block's stdout) is what the page shows as ``expected``."""
    expected, actual = normalise(expected), normalise(actual)
    shown, printed = _as_json(expected), _as_json(actual)
    if shown is not _NOT_JSON and printed is not _NOT_JSON:
        # Dumped again when unequal: NaN is not equal to itself, but prints the same.
        return bool(shown == printed) or _canonical(shown) == _canonical(printed)
    pattern = ".*?".join(re.escape(part) for part in _flat(expected).split(ELLIPSIS))
    return re.fullmatch(pattern, _flat(actual), flags=re.DOTALL) is not None
