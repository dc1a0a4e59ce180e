"""Prints how many doc blocks ran and which were left out, and why (issue 19)."""

from __future__ import annotations

import pytest

from docs.tally import NOT_RUN_KEY, RAN_KEY, summary_lines


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    ran, not_run = config.stash.get(RAN_KEY, []), config.stash.get(NOT_RUN_KEY, [])
    if ran or not_run:
        terminalreporter.section("docs examples")
        for line in summary_lines(ran, not_run):
            terminalreporter.write_line(line)
