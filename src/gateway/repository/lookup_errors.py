"""The errors of a failed model or version lookup, in Triton's words where its clients
match on them (triton-inference-server/core ``model_repository_manager.cc`` and
``GetModelVersionFromString``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.errors import GatewayError, InvalidInput, ModelNotFound
from gateway.repository.versions import VERSION_FORMAT, is_label_form
from gateway.validation import shown


def unknown_model(name: str, version: int | str | None = None) -> str:
    """Triton's wording for an unknown model or version."""
    if version is None:
        return f"Request for unknown model: '{name}' is not found"
    return f"Request for unknown model: '{name}' version {version} is not found"


def version_not_found(
    name: str,
    version: str,
    number: int | None,
    known: Iterable[int],
    labels: Mapping[str, int],
) -> GatewayError:
    """Why ``version`` of model ``name`` names nothing; ``number`` is what it resolved to
    (a version number or a label's), ``None`` when it resolved to none."""
    versions = ", ".join(str(v) for v in sorted(known)) or "none"
    if number is not None:
        named = "" if version == str(number) else f" (label '{version}')"
        return ModelNotFound(f"{unknown_model(name, number)}{named}; known versions: {versions}")
    odd = f"'{shown(version)}'"
    defined = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none defined"
    expected = f"a version is {VERSION_FORMAT}, or a label ({defined}); known versions: {versions}"
    if version.isascii() and version.isdigit():
        return ModelNotFound(
            f"{unknown_model(name, odd)}: {odd} is not a version of model '{name}': {expected}"
        )
    # Not a number: Triton's words; a 404 when it has a label's form (it may yet be defined).
    message = (
        f"failed to get model version from specified version string {odd}: it is not a "
        f"version of model '{name}': {expected}"
    )
    return ModelNotFound(message) if is_label_form(version) else InvalidInput(message)
