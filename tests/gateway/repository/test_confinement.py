"""Files a model config names (class labels, warm-up inputs) stay inside its directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import ModelSignature, TensorSpec
from gateway.repository.config import ConfigError, load_model_config
from gateway.repository.confinement import (
    OutsideModelDirectory,
    confined_path,
    relative_name_problem,
)
from gateway.repository.warmup import WarmupError, file_batch
from support.app import make_settings, open_client
from support.fake_backend import FakeLoader

SECRET = "-----BEGIN PRIVATE KEY-----\nnot for classification\n"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """``tmp_path/repo/m`` with a labels file inside; a secret file outside, beside repo."""
    (tmp_path / "secret.pem").write_text(SECRET)
    directory = tmp_path / "repo" / "m"
    (directory / "1").mkdir(parents=True)
    (directory / "1" / "model.onnx").write_bytes(b"")
    (directory / "labels.txt").write_text("cat\ndog\n")
    return directory


def labels_config(directory: Path, name: str) -> None:
    (directory / "config.yaml").write_text(f"labels: {{probabilities: {name!r}}}\n")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/passwd", "an absolute path"),
        ("../secret.pem", "a path climbing out with '..'"),
        ("sub/../../secret.pem", "a path climbing out with '..'"),
        ("..\\secret.pem", "a path climbing out with '..'"),
        ("C:\\keys\\jwt.pem", "an absolute path"),
    ],
)
def test_names_that_lead_out_are_refused_on_their_text(name: str, problem: str) -> None:
    assert relative_name_problem(name) == problem


@pytest.mark.parametrize("name", ["labels.txt", "sub/labels.txt", "./labels.txt", "a..b.txt"])
def test_names_inside_are_accepted(name: str) -> None:
    assert relative_name_problem(name) is None


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\"]), max_size=8).map("".join))
def test_a_name_accepted_on_its_text_never_resolves_outside(name: str) -> None:
    root = Path("/model/dir")
    if name and relative_name_problem(name) is None:
        assert Path(os.path.normpath(root / name)).is_relative_to(root)


@pytest.mark.parametrize("field", ["absolute", "climbing"])
def test_a_labels_file_outside_the_model_directory_fails_the_load(
    model_dir: Path, field: str
) -> None:
    # Fails before: the secret's lines became the labels of every classification.
    secret = model_dir.parent.parent / "secret.pem"
    labels_config(model_dir, str(secret) if field == "absolute" else "../../secret.pem")
    with pytest.raises(ConfigError) as caught:
        load_model_config(model_dir)
    message = str(caught.value)
    assert "labels" in message
    assert "probabilities" in message
    assert "inside the model directory" in message
    assert "not for classification" not in message


def test_a_symlink_leading_out_fails_the_load_and_one_inside_loads(model_dir: Path) -> None:
    (model_dir / "escape.txt").symlink_to(model_dir.parent.parent / "secret.pem")
    (model_dir / "alias.txt").symlink_to(model_dir / "labels.txt")
    labels_config(model_dir, "escape.txt")
    with pytest.raises(ConfigError, match=r"labels\.probabilities: 'escape\.txt' is a link"):
        load_model_config(model_dir)
    labels_config(model_dir, "alias.txt")
    assert load_model_config(model_dir).class_labels == {"probabilities": ("cat", "dog")}


def test_a_linked_parent_directory_leading_out_is_refused(model_dir: Path) -> None:
    (model_dir / "shared").symlink_to(model_dir.parent.parent)
    with pytest.raises(OutsideModelDirectory, match="a link leading out"):
        confined_path(model_dir, "shared/secret.pem", "labels.probabilities")


def test_warmup_inputs_outside_fail_the_load_and_the_warm_up(model_dir: Path) -> None:
    outside = model_dir.parent.parent / "x.npy"
    np.save(outside, np.zeros((1, 4), np.float32))
    (model_dir / "config.yaml").write_text(f"warmup: {{inputs: {{x: {str(outside)!r}}}}}\n")
    with pytest.raises(ConfigError, match=r"warmup\.inputs\.x.*an absolute path"):
        load_model_config(model_dir)
    (model_dir / "link.npy").symlink_to(outside)
    signature = ModelSignature(
        inputs=(TensorSpec("x", np.dtype(np.float32), (None, 4)),), outputs=()
    )
    with pytest.raises(WarmupError, match=r"warmup\.inputs\.x: 'link\.npy' is a link"):
        file_batch(signature, {"x": "link.npy"}, model_dir)


async def test_the_model_does_not_serve_and_the_index_says_why(model_dir: Path) -> None:
    labels_config(model_dir, "../../secret.pem")
    async with open_client(make_settings(model_dir.parent), loader=FakeLoader()) as http:
        index = (await http.post("/v2/repository/index")).json()
        assert (await http.get("/v2/models/m/ready")).status_code != 200
        loaded = await http.post("/v2/repository/models/m/load", json={})
    assert loaded.status_code == 400
    assert "failed to load 'm'" in loaded.json()["error"]
    assert "labels.probabilities" in loaded.json()["error"]
    assert any("labels.probabilities" in entry["reason"] for entry in index if entry["name"] == "m")
