"""Compressed bodies: ``Content-Encoding`` requests decompressed under the body cap, and
answers compressed for an ``Accept-Encoding`` that asks (gzip, deflate), as Triton does."""

from __future__ import annotations

import zlib

from gateway.errors import InvalidInput, PayloadTooLarge

# wbits per coding: gzip's header and trailer (16 + 15), and zlib's for "deflate", which
# RFC 9110 section 8.4.1.2 defines as the zlib format (tritonclient sends zlib.compress).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPTED = tuple(_WBITS)
_IDENTITY = ("", "identity")
# zlib's level 1: several times faster than the default (6) on tensors, which compress
# little better at higher levels; this runs on the event loop.
_LEVEL = 1


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """``body`` decoded from ``content_encoding``; at most ``max_bytes`` are ever produced.

    Raises ``PayloadTooLarge`` once the decoded body would pass ``max_bytes`` (a
    decompression bomb costs at most the cap in memory), ``InvalidInput`` for a coding
    other than gzip or deflate, or for a corrupt or truncated stream.
    """
    coding = (content_encoding or "").strip().lower()
    if coding in _IDENTITY:
        return body
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise InvalidInput(
            f"unsupported Content-Encoding {coding[:40]!r}: "
            f"accepted are {', '.join(ACCEPTED)} and identity"
        )
    parts: list[bytes] = []  # one per gzip member; joining one part copies nothing
    produced = 0
    data = body
    try:
        while data:  # a gzip body may hold several members, one after another
            stream = zlib.decompressobj(wbits)
            parts.append(stream.decompress(data, max_bytes - produced + 1))
            produced += len(parts[-1])
            if produced > max_bytes:
                raise PayloadTooLarge(
                    f"request body too large: more than {max_bytes} bytes once decompressed "
                    f"({coding}) exceeds the limit of {max_bytes} bytes"
                )
            if not stream.eof:
                raise InvalidInput(f"request body is not valid {coding}: the stream is truncated")
            data = stream.unused_data
            if data and coding == "deflate":
                raise InvalidInput("request body is not valid deflate: data after the stream")
    except zlib.error as exc:
        raise InvalidInput(f"request body is not valid {coding}: {exc}") from None
    return b"".join(parts)


def chosen_coding(accept_encoding: str | None) -> str | None:
    """The coding to answer in for this ``Accept-Encoding``: gzip or deflate, the one
    with the higher q (gzip on a tie), never one with q=0; ``None`` for no compression."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        weights[name.strip().lower()] = _quality(params)
    star = weights.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in ACCEPTED:
        q = weights.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    return best


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def compress(payload: bytes, coding: str) -> bytes:
    """``payload`` compressed in ``coding`` (one of ``ACCEPTED``)."""
    stream = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS[coding])
    return stream.compress(payload) + stream.flush()
