"""A Dockerfile read into stages of instructions, and a .dockerignore's exclusions.

Enough of the Dockerfile syntax for our two files: line continuations, comment lines
(also inside a continued instruction, as BuildKit allows), ``ARG`` defaults and ``${NAME}``
substitution, exec-form (JSON) arguments.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), its argument text and its first line."""

    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array form of the arguments (after any ``--option=...``); ValueError if
        it is the shell form."""
        text = self.arguments
        while text.startswith("--"):
            text = text.split(maxsplit=1)[1]
        if text.startswith("CMD "):  # HEALTHCHECK [options] CMD [...]
            text = text[4:].lstrip()
        if not text.startswith("["):
            raise ValueError(f"line {self.line}: {self.keyword} is in shell form")
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"line {self.line}: {self.keyword} is not a list of strings")
        return value


@dataclass
class Stage:
    """One ``FROM`` and the instructions after it."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The instructions with this keyword, in order."""
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        """The one that takes effect (the last); AssertionError when there is none."""
        found = self.all(keyword)
        assert found, f"the stage FROM {self.base} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """The ``ENV`` variables it sets (``NAME=value`` form)."""
        variables: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.arguments):
                name, equals, value = word.partition("=")
                assert equals, f"line {instruction.line}: ENV {word!r} is not NAME=value"
                variables[name] = value
        return variables


@dataclass
class Dockerfile:
    """The global ``ARG`` defaults and the stages, the last one being the image."""

    args: dict[str, str]
    stages: list[Stage]

    @property
    def image(self) -> Stage:
        """The final stage: what ``docker build`` makes."""
        return self.stages[-1]

    def expand(self, text: str, stage: Stage | None = None) -> str:
        """``text`` with ``${NAME}`` replaced by the ARG defaults (global, then the stage's)."""
        values = dict(self.args)
        for instruction in stage.all("ARG") if stage else []:
            name, _, default = instruction.arguments.partition("=")
            values[name] = default.strip('"') if default else values.get(name, "")
        return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(part for part in pending if part)))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return lines


def parse(text: str) -> Dockerfile:
    """Read a Dockerfile; AssertionError on anything this reading does not expect."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, content in _logical_lines(text):
        keyword, _, arguments = content.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip(), line)
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {line}: FROM {instruction.arguments}"
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            assert instruction.keyword == "ARG", f"line {line}: {keyword} before the first FROM"
            name, _, default = instruction.arguments.partition("=")
            args[name] = default.strip('"')
    assert stages, "no FROM"
    return Dockerfile(args, stages)


def ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore (negations are not used and not supported here)."""
    patterns = [
        line.strip().strip("/")
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "negated patterns are not checked"
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: a pattern matches it or a folder above."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        regular = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatchcase(prefix, pattern):
                return True
            # "**/x" also matches x at any depth.
            if pattern.startswith("**/") and fnmatchcase(prefix.split("/")[-1], regular):
                return True
    return False
