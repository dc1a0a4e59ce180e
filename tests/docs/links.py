"""Relative links and anchors of the docs and of the shipped configs' comments.

Anchors are GitHub's heading slugs: the heading's text (link targets dropped),
lowercased, with every character but letters, digits, spaces, ``-`` and ``_`` dropped
and spaces made ``-``; a repeated slug gets ``-1``, ``-2``... HTML ``id``/``name``
attributes count as anchors too. Headings and links inside fenced blocks are code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docs.blocks import fenced_blocks

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*?(?:id|name)=["']([^"']+)["']""")
_INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_CONFIG_REFERENCE = re.compile(r"\b((?:docs/)?[\w./-]+\.md)(#[\w-]+)?")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    """A relative link: the file it is written in, its line and its target."""

    source: Path
    line: int
    target: str


def _without_code_blocks(path: Path, text: str) -> str:
    """``text`` with every fenced block blanked (line count kept)."""
    for block in reversed(fenced_blocks(path, text)):
        blank = re.sub(r"[^\n]", " ", text[block.start : block.end])
        text = text[: block.start] + blank + text[block.end :]
    return text


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.strip().lower()
    text = "".join(char for char in text if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


def anchors(path: Path, text: str) -> set[str]:
    """Every anchor a Markdown page defines."""
    prose = _without_code_blocks(path, text)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(prose):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(_HTML_ANCHOR.findall(prose))
    return found


def markdown_links(path: Path, text: str) -> Iterator[Link]:
    """The relative links of a Markdown page (external ones left out)."""
    prose = _CODE_SPAN.sub(lambda code: re.sub(r"[^\n]", " ", code.group(0)), text)
    prose = _without_code_blocks(path, prose)
    for pattern in (_INLINE_LINK, _REFERENCE_LINK):
        for match in pattern.finditer(prose):
            target = match.group(1)
            if not _EXTERNAL.match(target):
                yield Link(path, prose.count("\n", 0, match.start()) + 1, target)


def config_links(path: Path, text: str) -> Iterator[Link]:
    """The docs a config file's comments point to (written from the repository root)."""
    for number, line in enumerate(text.splitlines(), start=1):
        _, hash_sign, comment = line.partition("#")
        if hash_sign:
            for match in _CONFIG_REFERENCE.finditer(comment):
                yield Link(path, number, match.group(1) + (match.group(2) or ""))


def broken(link: Link, root: Path, base: Path) -> str | None:
    """Why ``link`` (resolved against ``base``, inside ``root``) does not resolve."""
    target, _, anchor = link.target.partition("#")
    page = (base / target).resolve() if target else (root / link.source).resolve()
    if not page.exists():
        return f"{link.source}:{link.line}: {link.target}: no such file"
    if anchor and page.suffix == ".md" and anchor not in anchors(page, page.read_text()):
        return f"{link.source}:{link.line}: {link.target}: no heading with anchor #{anchor}"
    return None
