"""The real validators the deployment tests run, all offline, and where they come from.

check-jsonschema and kubernetes-validate are dev extras (pyproject.toml); promtool and kubectl
(for its built-in kustomize) are Debian's, unpacked next to the virtual environment's python by
the Makefile (``$(PROMTOOL)``, ``$(KUBECTL)``). Only those copies are used, never another
kubectl on the PATH, so every machine renders with the same kustomize.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
# The Kubernetes release whose schemas the manifests must satisfy (bundled by
# kubernetes-validate; pyproject.toml asks for a version that has them).
KUBERNETES_VERSION = "1.32.0"
TIMEOUT_S = 120


def tool(name: str) -> Path:
    """The validator ``name`` in the virtual environment; fails (not skips) when missing."""
    path = BIN / name
    assert path.exists(), f"{path} is missing: `make test` installs it (Makefile)"
    return path


def run(command: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """Run a validator, capturing its output (guarded by a time limit)."""
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against its built-in copy of the Compose specification's schema."""
    return run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path])


def check_prometheus_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check config`` (Debian's promtool, which also reads the files it names)."""
    return run([tool("promtool"), "check", "config", path])


def check_kubernetes(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate, strict (unknown fields fail), against KUBERNETES_VERSION."""
    command: list[str | Path] = [tool("kubernetes-validate"), "--strict", "--quiet"]
    return run([*command, "--kubernetes-version", KUBERNETES_VERSION, *paths])


def render_kustomization(directory: Path) -> str:
    """``kubectl kustomize directory``: the manifests as one YAML stream."""
    result = run([tool("kubectl"), "kustomize", directory])
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(stream: str) -> list[dict[str, Any]]:
    """The YAML documents of a stream, each a mapping."""
    loaded = [doc for doc in yaml.safe_load_all(stream) if doc is not None]
    assert all(isinstance(doc, dict) for doc in loaded)
    return loaded
