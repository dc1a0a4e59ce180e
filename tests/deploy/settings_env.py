"""``TENSORGATE_*`` variables of the deployment artefacts, checked against the real Settings.

pydantic-settings ignores a variable it does not know (``extra="ignore"``), so a misspelt
name would pass silently; here every name must map to a setting and every value must
validate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from unittest.mock import patch

from pydantic import BaseModel, ValidationError

from gateway.settings import Settings

PREFIX = "TENSORGATE_"


def _known(model: type[BaseModel], parts: list[str]) -> bool:
    field = model.model_fields.get(parts[0].lower())
    if field is None:
        return False
    if len(parts) == 1:
        return True
    section = field.annotation
    return (
        isinstance(section, type) and issubclass(section, BaseModel) and _known(section, parts[1:])
    )


def unknown_names(variables: Mapping[str, str]) -> list[str]:
    """The ``TENSORGATE_*`` names in ``variables`` that name no setting."""
    return [
        name
        for name in variables
        if name.startswith(PREFIX) and not _known(Settings, name[len(PREFIX) :].split("__"))
    ]


def settings_from(variables: Mapping[str, str]) -> Settings:
    """The Settings these variables make, read as ``tensorgate serve`` reads its environment
    (and nothing else from the test process's); ValueError on an unknown name or a value
    that does not validate."""
    if unknown := unknown_names(variables):
        raise ValueError(f"not tensorgate settings: {unknown}")
    with patch.dict(os.environ, variables, clear=True):
        try:
            return Settings()
        except ValidationError as error:
            raise ValueError(f"invalid settings {dict(variables)}: {error}") from error
