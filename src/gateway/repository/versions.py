"""What a model version looks like, in URLs and as a directory name: one strict form."""

from __future__ import annotations

import re

LABEL_PATTERN = r"[a-z][a-z0-9_-]{0,31}"
"""A version label: a lower-case letter, then up to 31 lower-case letters, digits, _ or -."""
VERSION_OR_LABEL_PATTERN = rf"^(?:[0-9]{{1,12}}|{LABEL_PATTERN})$"
"""What a route's version segment may be without a 400: digits (a version, or 404 when no
version has that number) or the form of a version label (404 when undefined)."""
VERSION_FORMAT = "a positive whole number in ASCII digits without leading zeros, such as 1 or 12"
# ASCII only: str.isdigit() and int() also take "01", fullwidth and Arabic-Indic digits (and
# int() raises on superscripts and past 4,300 digits); nine digits keep it inside int32.
_VERSION = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)


def parse_version(text: str) -> int | None:
    """The version number ``text`` spells in the one accepted form, else None."""
    return int(text) if _VERSION.fullmatch(text) else None


_LABEL = re.compile(LABEL_PATTERN, re.ASCII)


def is_label_form(text: str) -> bool:
    """Whether ``text`` has the form of a version label (defined or not)."""
    return _LABEL.fullmatch(text) is not None
