"""The soak's model repositories: a scratch copy of the demo models plus a remote model,
and the changes made to it while it serves (a version added, the traffic split moved)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from soak.kinds import REMOTE_MODEL

ROOT = Path(__file__).resolve().parents[2]
CHANGED_MODEL = "mlp"
UPSTREAM_TOKEN_VARIABLE = "SOAK_UPSTREAM_TOKEN"
SPLITS = ((90, 10), (50, 50), (10, 90))
"""The older and newer version's weights, in turn."""


def upstream_repository(into: Path) -> Path:
    """What the remote upstream serves: the demo ``mlp`` alone."""
    shutil.copytree(ROOT / "models" / "mlp", into / "mlp")
    return into


def gateway_repository(into: Path, upstream: str) -> Path:
    """The demo models, and ``remote-mlp`` calling ``mlp`` on ``upstream``."""
    for name in ("mlp", "digits"):
        shutil.copytree(ROOT / "models" / name, into / name)
    remote = into / REMOTE_MODEL
    (remote / "1").mkdir(parents=True)
    (remote / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "remote": {
                    "urls": [upstream],
                    "model": "mlp",
                    "token_env": UPSTREAM_TOKEN_VARIABLE,
                    "wire": "binary",
                }
            }
        )
    )
    return into


@dataclass
class Changes:
    """The changes the soak makes to ``mlp``, one per call of ``next``: add a version,
    then move the split between the two newest, in turn. Two versions serve from the
    start and after every change (``version_policy: {latest: 2}``), so memory has no
    reason to grow with the run."""

    model_dir: Path
    versions: list[int] = field(default_factory=lambda: [1])
    count: int = 0

    def __post_init__(self) -> None:
        self._add_version()

    def next(self) -> str:
        """Make the next change on disk; say what it was."""
        self.count += 1
        if self.count % 2:
            return self._add_version()
        older, newer = SPLITS[(self.count // 2) % len(SPLITS)]
        self._write_config((older, newer))
        return f"split {self.versions[-2]}:{older} / {self.versions[-1]}:{newer}"

    def retire(self) -> None:
        """Remove the version directories the policy no longer selects (after a load)."""
        for version in self.versions[:-2]:
            shutil.rmtree(self.model_dir / str(version), ignore_errors=True)
        self.versions = self.versions[-2:]

    def _add_version(self) -> str:
        new = self.versions[-1] + 1
        (self.model_dir / str(new)).mkdir()
        shutil.copyfile(
            self.model_dir / str(self.versions[-1]) / "model.onnx",
            self.model_dir / str(new) / "model.onnx",
        )
        self.versions.append(new)
        self._write_config(SPLITS[0])
        return f"version {new} added"

    def _write_config(self, split: tuple[int, int]) -> None:
        config: dict[str, object] = {
            "execution_providers": ["cpu"],
            "graph_optimization_level": "all",
            "intra_op_threads": 1,
            "version_policy": {"latest": 2},
            "warmup": {"runs": 1, "batch_sizes": [1]},
        }
        older, newer = self.versions[-2:]
        config["traffic"] = {"split": {older: split[0], newer: split[1]}}
        (self.model_dir / "config.yaml").write_text(yaml.safe_dump(config))
