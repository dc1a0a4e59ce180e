"""Reading a model repository directory."""

from __future__ import annotations

from pathlib import Path

from gateway.repository.scanning import is_valid_model_name, scan_repository


def make_version(root: Path, name: str, version: str) -> None:
    (root / name / version).mkdir(parents=True)


def test_scan_lists_models_versions_and_problems(tmp_path: Path) -> None:
    make_version(tmp_path, "good", "1")
    make_version(tmp_path, "good", "3")
    make_version(tmp_path, "good", "notes")
    (tmp_path / "empty").mkdir()
    make_version(tmp_path, "bad-config", "1")
    (tmp_path / "bad-config" / "config.yaml").write_text("instances: -1\n")
    make_version(tmp_path, ".hidden", "1")
    make_version(tmp_path, "has space", "1")
    (tmp_path / "README.txt").write_text("not a model")

    sources = {source.name: source for source in scan_repository(tmp_path)}

    assert sorted(sources) == ["bad-config", "empty", "good"]
    assert sources["good"].versions == (1, 3)
    assert sources["good"].problem is None
    assert sources["good"].model_path(3) == tmp_path / "good" / "3" / "model.onnx"
    assert "no version directories" in (sources["empty"].problem or "")
    assert "instances" in (sources["bad-config"].problem or "")


def test_policy_that_selects_nothing_is_a_problem(tmp_path: Path) -> None:
    make_version(tmp_path, "m", "1")
    (tmp_path / "m" / "config.yaml").write_text("version_policy: {specific: [7]}\n")
    (source,) = scan_repository(tmp_path)
    assert "selects none" in (source.problem or "")


def test_missing_repository_is_empty(tmp_path: Path) -> None:
    assert scan_repository(tmp_path / "nope") == []


def test_model_names_are_url_safe() -> None:
    assert is_valid_model_name("resnet-50_v1.2")
    assert not is_valid_model_name("a/b")
    assert not is_valid_model_name("")
    assert not is_valid_model_name("x" * 200)


def test_only_strict_version_directories_count(tmp_path: Path) -> None:
    # Fails before: "¹" crashed the scan (int() raised) and "01" was taken as version 1,
    # whose file was then looked for under 1/.
    for odd in ("\u00b9", "01", "\uff11", "\u0661", "0", "1" * 12):
        make_version(tmp_path, "m", odd)
    make_version(tmp_path, "m", "2")
    (source,) = scan_repository(tmp_path)
    assert source.versions == (2,)
