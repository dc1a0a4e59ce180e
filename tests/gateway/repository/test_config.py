"""Model config files: defaults, aliases, version policies, clear errors, checked-in schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.repository.config import (
    ConfigError,
    ModelConfig,
    config_json_schema,
    load_model_config,
    parse_model_config,
)
from support.paths import SCHEMAS

SCHEMA_FILE = SCHEMAS / "model-config.schema.json"


def test_missing_or_empty_config_means_defaults(tmp_path: Path) -> None:
    assert load_model_config(tmp_path) == ModelConfig()
    (tmp_path / "config.yaml").write_text("# nothing set\n")
    assert load_model_config(tmp_path) == ModelConfig()


def test_provider_aliases_expand_to_onnxruntime_names() -> None:
    config = parse_model_config({"execution_providers": ["cuda", "CPU"]}, "t")
    assert config.runtime_options().execution_providers == (
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("all", [1, 2, 5]),
        ({"latest": 2}, [2, 5]),
        ({"specific": [1, 5, 9]}, [1, 5]),
    ],
)
def test_version_policies(policy: object, expected: list[int]) -> None:
    config = parse_model_config({"version_policy": policy}, "t")
    assert config.select_versions([5, 1, 2]) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("instances: 0\n", "instances"),
        ("intra_op_threads: many\n", "intra_op_threads"),
        ("unknown_key: 1\n", "unknown_key: Extra inputs are not permitted"),
        ("- a list\n", "expected a mapping"),
        ("version_policy: {latest: 0}\n", "version_policy"),
        ("key: [unclosed\n", "cannot read YAML"),
    ],
)
def test_invalid_config_names_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model_config(tmp_path)
    assert str(tmp_path / "config.yaml") in str(caught.value)
    assert message in str(caught.value)


def test_checked_in_json_schema_matches_the_code() -> None:
    """Regenerate with `make schemas`."""
    assert json.loads(SCHEMA_FILE.read_text()) == config_json_schema()
