"""The SDK step of the README and docs/api.md writes its client where git does not see it."""

from __future__ import annotations

import re
import subprocess

from support.paths import ROOT

OUTPUT_PATH = re.compile(r"--output-path\s+(\S+)")


def test_the_generated_client_directory_is_ignored_by_git() -> None:
    outputs = {
        path
        for page in ("README.md", "docs/api.md")
        for path in OUTPUT_PATH.findall((ROOT / page).read_text(encoding="utf-8"))
    }
    assert outputs  # the scan still finds the step
    for output in sorted(outputs):
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{output}/"], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{output}/ (the generated client) is not in .gitignore"
