"""The fenced blocks of a Markdown page, as the docs tests read them (tests/docs/README.md).

Sybil's lexer finds the fences (info string, source, position); this module decides what
each block is: runnable (``sh``, ``bash``, ``python``), the expected output of the
runnable block just above it (``text`` or ``json`` with only blank lines between), or
prose. A runnable block is left out only under the visible marker line
``*Not run by the docs tests: <reason>.*`` directly above its fence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sybil import Document
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

RUNNABLE = frozenset({"sh", "bash", "python"})
OUTPUT = frozenset({"text", "json"})
NOT_RUN = re.compile(r"^\*Not run by the docs tests: (?P<reason>[^*]+?)\.?\*$")
_LEXER = RawFencedCodeBlockLexer(
    info_pattern=re.compile(r"(?P<info>[^\n]*)\n"),
    mapping={"info": "info", "source": "source"},
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and its text."""

    path: Path
    line: int
    language: str
    source: str
    start: int
    end: int

    @property
    def where(self) -> str:
        """``docs/page.md:LINE``, for messages."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Example:
    """A runnable block, the output the page shows for it (if any), and why it is not
    run (``None``: it runs)."""

    block: Block
    expected: Block | None
    not_run: str | None


def fenced_blocks(path: Path, text: str) -> list[Block]:
    """Every fenced block of ``text`` in page order."""
    document = Document(text, str(path))
    blocks = []
    for region in _LEXER(document):
        info = str(region.lexemes["info"]).strip()
        language = info.split()[0] if info else ""
        line = text.count("\n", 0, region.start) + 1
        source = str(region.lexemes["source"])
        blocks.append(Block(path, line, language, source, region.start, region.end))
    return sorted(blocks, key=lambda block: block.start)


def _marker_above(text: str, block: Block) -> str | None:
    """The reason of a not-run marker on the last non-blank line above ``block``."""
    above = text[: block.start].rstrip().rsplit("\n", 1)[-1].strip()
    match = NOT_RUN.match(above)
    return match.group("reason") if match else None


def examples(path: Path, text: str) -> list[Example]:
    """The runnable blocks of a page, each with its shown output and marker."""
    blocks = fenced_blocks(path, text)
    found = []
    for index, block in enumerate(blocks):
        if block.language not in RUNNABLE:
            continue
        expected = None
        if index + 1 < len(blocks):
            following = blocks[index + 1]
            between = text[block.end : following.start]
            if following.language in OUTPUT and not between.strip():
                expected = following
        found.append(Example(block, expected, _marker_above(text, block)))
    return found
