"""The base of every section of a model's ``config.yaml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigSection(BaseModel):
    """Unknown keys are errors (a typo never passes silently), field docstrings describe
    the keys in the JSON Schema, and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)
