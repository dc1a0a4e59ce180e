"""What a model version looks like, in URLs and as a directory name: one strict form."""

from __future__ import annotations

import re

VERSION_FORMAT = "a positive whole number in ASCII digits without leading zeros, such as 1 or 12"
# ASCII only: str.isdigit() and int() also take "01", fullwidth and Arabic-Indic digits (and
# int() raises on superscripts and past 4,300 digits); nine digits keep it inside int32.
_VERSION = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)


def parse_version(text: str) -> int | None:
    """The version number ``text`` spells in the one accepted form, else None."""
    return int(text) if _VERSION.fullmatch(text) else None
