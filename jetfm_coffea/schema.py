"""Validate jetfm-coffea documents against the versioned JSON schemas in ``schemas/``.

Minimal validator (shards branch): schemas live pyhf-style in
``schemas/<version>/<name>.json`` and reference each other by bare file name
(``"shard_defs.json#/$defs/sha256"``). A generic validator is being written on another
branch with the same ``validate(document, schema_name, version=None)`` signature; the two
are reconciled at merge.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jetfm_coffea._resources import schemas_dir
from jetfm_coffea.errors import SchemaValidationError

__all__ = ["load_schema", "validate"]

_MAX_REPORTED = 5


@cache
def _registry_of(folder: Path) -> Registry:
    resources = []
    for path in sorted(folder.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append(
            (path.name, Resource.from_contents(contents, default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def _version_dir(version: str) -> Path:
    folder = schemas_dir() / version
    if not folder.is_dir():
        known = sorted(p.name for p in schemas_dir().iterdir() if p.is_dir())
        raise SchemaValidationError(f"unknown schema version {version!r} (available: {known})")
    return folder


def load_schema(schema_name: str, version: str) -> dict[str, Any]:
    """Return the parsed schema ``schemas/<version>/<schema_name>.json``."""
    folder = _version_dir(version)
    if not (folder / f"{schema_name}.json").is_file():
        raise SchemaValidationError(f"no schema {schema_name!r} for version {version}")
    return _registry_of(folder).contents(f"{schema_name}.json")


def validate(document: dict[str, Any], schema_name: str, version: str | None = None) -> None:
    """Validate ``document`` against ``schemas/<version>/<schema_name>.json``.

    ``version`` defaults to the document's ``schema_version``. Raises
    :class:`SchemaValidationError` listing the JSON path and reason of each problem.
    """
    if not isinstance(document, dict):
        raise SchemaValidationError(f"{schema_name}: expected a JSON object")
    version = version or document.get("schema_version")
    if not isinstance(version, str):
        raise SchemaValidationError(f"{schema_name}: the document declares no schema_version")
    schema = load_schema(schema_name, version)
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry_of(_version_dir(version))
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = []
    for err in errors[:_MAX_REPORTED]:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        lines.append(f"{path}: {err.message}")
    if len(errors) > _MAX_REPORTED:
        lines.append(f"... and {len(errors) - _MAX_REPORTED} more")
    raise SchemaValidationError(
        f"document does not validate against schema {schema_name} {version}:\n  "
        + "\n  ".join(lines)
    )
