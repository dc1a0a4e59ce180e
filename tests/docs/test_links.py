"""Every relative link and anchor of README.md, docs/ and the shipped configs resolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.links import Link, anchors, broken, config_links, markdown_links, slug
from support.paths import ROOT

PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "tests" / "docs").glob("*.md")]
)
CONFIGS = sorted(
    [
        *(ROOT / "models").glob("*/config.yaml"),
        *(ROOT / "deploy").rglob("*.y*ml"),
        *(ROOT / "deploy").rglob("*.conf"),
        *ROOT.glob("Dockerfile*"),
        ROOT / "docker-compose.yml",
    ]
)


def test_every_link_of_the_docs_resolves() -> None:
    problems = []
    for page in PAGES:
        for link in markdown_links(page.relative_to(ROOT), page.read_text()):
            if why := broken(link, ROOT, page.parent):
                problems.append(why)
    assert not problems, "\n".join(problems)


def test_every_docs_reference_of_the_shipped_configs_resolves() -> None:
    problems, checked = [], 0
    for config in CONFIGS:
        for link in config_links(config.relative_to(ROOT), config.read_text()):
            checked += 1
            if why := broken(link, ROOT, ROOT):
                problems.append(why)
    assert checked > 0, "no docs reference found in the shipped configs: the scan is broken"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Model config (`config.yaml`)", "model-config-configyaml"),
        ("Scaling out: replicas, workers & GPUs", "scaling-out-replicas-workers--gpus"),
        ("`batching.inline_max_ms`", "batchinginline_max_ms"),
        ("See [the protocol](protocol.md) first", "see-the-protocol-first"),
    ],
)
def test_anchors_are_githubs_heading_slugs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_and_html_anchors_count_and_code_does_not(tmp_path: Path) -> None:
    page = '# Setup\n## Setup\n<a id="custom"></a>\n```sh\n# not a heading\n```\n'
    assert anchors(Path("page.md"), page) == {"setup", "setup-1", "custom"}


def test_a_broken_anchor_and_a_missing_file_are_found(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "# Here\n[ok](#here) [bad](#there) [gone](b.md) `[code](c.md)`\n"
    )
    links = list(markdown_links(Path("a.md"), (tmp_path / "a.md").read_text()))
    assert [link.target for link in links] == ["#here", "#there", "b.md"]
    problems = [broken(link, tmp_path, tmp_path) for link in links]
    assert problems[0] is None
    assert problems[1] is not None
    assert "#there" in problems[1]
    assert problems[2] is not None
    assert "no such file" in problems[2]
    assert broken(Link(Path("a.md"), 1, "a.md#here"), tmp_path, tmp_path) is None
