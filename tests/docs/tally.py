"""What the docs tests ran and left out, kept for the end-of-run summary (conftest.py)."""

from __future__ import annotations

import pytest

RAN_KEY = pytest.StashKey[list[str]]()
NOT_RUN_KEY = pytest.StashKey[list[tuple[str, str]]]()


def summary_lines(ran: list[str], not_run: list[tuple[str, str]]) -> list[str]:
    """The lines printed at the end of a run that ran docs pages."""
    lines = [f"docs examples: {len(ran)} blocks run, {len(not_run)} not run"]
    lines += [f"  not run: {where}: {reason}" for where, reason in sorted(not_run)]
    return lines
