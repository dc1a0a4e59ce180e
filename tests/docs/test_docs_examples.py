"""Every ``sh``, ``bash`` and ``python`` block of README.md and docs/*.md runs, in page
order, against a live server, and prints what its page shows (tests/docs/README.md).

One test per page: a page is one terminal session, so its blocks run in order and share
exported variables; every failing block of the page is reported, not only the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.blocks import Example, examples
from docs.outputs import matches
from docs.runner import Ran, page_session
from docs.tally import NOT_RUN_KEY, RAN_KEY
from support.paths import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUNNABLE_PAGES = [page for page in PAGES if examples(page, page.read_text())]

pytestmark = pytest.mark.e2e


def _report(example: Example, ran: Ran, why: str) -> str:
    block = example.block
    shown = f"\n--- the page shows:\n{example.expected.source}" if example.expected else ""
    return (
        f"{block.where} ({block.language}): {why}\n--- block:\n{block.source}"
        f"--- exit status {ran.returncode}\n--- stdout:\n{ran.stdout}\n--- stderr:\n{ran.stderr}"
        f"{shown}"
    )


def _check(example: Example, ran: Ran) -> str | None:
    if ran.returncode != 0:
        return _report(example, ran, "the block failed")
    if example.expected and not matches(example.expected.source, ran.stdout):
        return _report(example, ran, "it printed something other than the page shows")
    return None


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_block_of_the_page_does_what_it_says(
    page: Path, request: pytest.FixtureRequest
) -> None:
    found = examples(page.relative_to(ROOT), page.read_text())
    failures: list[str] = []
    ran_here: list[str] = []
    not_run_here: list[tuple[str, str]] = []
    with page_session() as (session, scratch):
        for example in found:
            if example.not_run is not None:
                not_run_here.append((example.block.where, example.not_run))
                continue
            ran = session.run(example.block.language, example.block.source, scratch)
            ran_here.append(example.block.where)
            if failure := _check(example, ran):
                failures.append(failure)
        server_log = (scratch / "server.log").read_text()
    request.config.stash.setdefault(RAN_KEY, []).extend(ran_here)
    request.config.stash.setdefault(NOT_RUN_KEY, []).extend(not_run_here)
    assert not failures, "\n\n".join([*failures, f"--- server log:\n{server_log[-4000:]}"])
