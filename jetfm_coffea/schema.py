"""Validate jetfm-coffea documents against the versioned JSON schemas in ``schemas/``.

Schemas live pyhf-style in ``schemas/<version>/<name>.json``; shared building blocks are in
``schemas/<version>/defs.json`` and are referenced as ``"defs.json#/$defs/<name>"``. Every
document declares the schema version it follows, as ``"schema_version": "1.0.0"`` (preferred)
or through a ``"$schema"`` string that contains the version (``".../1.0.0/<name>.json"``).

>>> from jetfm_coffea.schema import document_version, validate
>>> document_version({"$schema": "https://example.org/schemas/2.0.0/shard.json"})
'2.0.0'
>>> validate(catalogue, "opendata_catalogue")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jetfm_coffea._resources import schemas_dir
from jetfm_coffea.errors import SchemaValidationError

__all__ = ["available_schemas", "document_version", "load_schema", "validate"]

_SEMVER = re.compile(r"(?<![0-9.])([0-9]+\.[0-9]+\.[0-9]+)(?![0-9.])")
_MAX_REPORTED = 5


def available_schemas() -> dict[str, list[str]]:
    """Return ``{version: [schema names]}`` for every schema folder shipped with the package."""
    out: dict[str, list[str]] = {}
    for folder in sorted(p for p in schemas_dir().iterdir() if p.is_dir()):
        names = sorted(p.stem for p in folder.glob("*.json") if p.stem != "defs")
        if names:
            out[folder.name] = names
    return out


def document_version(document: dict[str, Any], name: str = "document") -> str:
    """Return the schema version a document declares (``schema_version``, else ``$schema``)."""
    if not isinstance(document, dict):
        raise SchemaValidationError(
            f"{name}: expected a JSON object (dict), got {type(document).__name__}"
        )
    declared = document.get("schema_version")
    if isinstance(declared, str) and _SEMVER.fullmatch(declared):
        return declared
    ref = document.get("$schema")
    if isinstance(ref, str):
        found = _SEMVER.findall(ref)
        if found:
            return found[-1]
    if declared is not None:
        raise SchemaValidationError(
            f"{name}: $.schema_version: {declared!r} is not a version like '1.0.0'"
        )
    raise SchemaValidationError(
        f'{name}: $: the document declares no schema version (add "schema_version": "1.0.0")'
    )


def _version_dir(version: str) -> Path:
    folder = schemas_dir() / version
    if not folder.is_dir():
        known = ", ".join(sorted(available_schemas())) or "none"
        raise SchemaValidationError(f"unknown schema version {version!r} (available: {known})")
    return folder


def _registry(version: str) -> Registry:
    """A registry over every schema file of one version, each under its bare file name."""
    return _registry_of(_version_dir(version))


@cache
def _registry_of(folder: Path) -> Registry:
    resources = []
    for path in sorted(folder.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((path.name, resource))
    return Registry().with_resources(resources)


def load_schema(schema_name: str, version: str) -> dict[str, Any]:
    """Return the parsed schema ``schemas/<version>/<schema_name>.json``."""
    path = _version_dir(version) / f"{schema_name}.json"
    if not path.is_file():
        known = ", ".join(available_schemas().get(version, [])) or "none"
        raise SchemaValidationError(
            f"no schema {schema_name!r} for version {version} (available: {known})"
        )
    return _registry(version).contents(path.name)


def _json_path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate(
    document: dict[str, Any],
    schema_name: str,
    version: str | None = None,
    *,
    name: str | None = None,
) -> None:
    """Validate ``document`` against ``schemas/<version>/<schema_name>.json``.

    Parameters
    ----------
    document
        The parsed JSON document.
    schema_name
        Schema file stem, e.g. ``"opendata_catalogue"``.
    version
        Schema version; by default the one the document declares.
    name
        How to call the document in error messages (a file name, say).

    Raises
    ------
    SchemaValidationError
        With the document name, the JSON path of each problem (``$.datasets.x.nevents``) and
        the reason; the first error is also available as ``err.json_path`` / ``err.reason``.
    """
    label = name or schema_name
    version = version or document_version(document, label)
    schema = load_schema(schema_name, version)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, registry=_registry(version))
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if not errors:
        return
    # report the most specific reason for each failing location
    lines = []
    for err in errors[:_MAX_REPORTED]:
        best = jsonschema.exceptions.best_match([err])
        lines.append(f"{_json_path(best.absolute_path)}: {best.message}")
    more = len(errors) - _MAX_REPORTED
    if more > 0:
        lines.append(f"... and {more} more")
    exc = SchemaValidationError(
        f"{label} does not validate against schema {schema_name} {version}:\n  "
        + "\n  ".join(lines)
    )
    first = jsonschema.exceptions.best_match([errors[0]])
    exc.json_path = _json_path(first.absolute_path)  # type: ignore[attr-defined]
    exc.reason = first.message  # type: ignore[attr-defined]
    raise exc
