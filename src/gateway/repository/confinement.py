"""Files a model config names stay inside the model's directory.

Whoever can publish a model directory must not be able to serve the gateway's own files
(a JWT key, a TLS key) as class labels or warm-up inputs: a name is refused when it is
absolute, climbs with ``..``, or resolves (through a symlink) to somewhere outside.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class OutsideModelDirectory(ValueError):
    """A file name that leads out of the model's directory; the message names the field."""


def relative_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file inside a model directory, judged on its text
    alone; ``None`` when it may."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in pure.parts or ".." in name.split("\\"):
        return "a path climbing out with '..'"
    return None


def confined_path(model_dir: Path, name: str, field: str) -> Path:
    """``model_dir / name`` once it is known to stay inside ``model_dir``, symlinks
    followed (blocking: it touches the filesystem)."""
    problem = relative_name_problem(name)
    if problem is None:
        root = model_dir.resolve()
        if not (root / name).resolve().is_relative_to(root):
            problem = "a link leading out of the model directory"
    if problem is not None:
        raise OutsideModelDirectory(
            f"{field}: {name!r} is {problem}; files a config names must be inside the "
            f"model directory ({model_dir.name}/)"
        )
    return model_dir / name
