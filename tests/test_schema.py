"""The generic schema validator: version discovery, $ref resolution, error messages."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from jetfm_coffea import schema as schema_mod
from jetfm_coffea._resources import schemas_dir
from jetfm_coffea.errors import SchemaValidationError
from jetfm_coffea.schema import available_schemas, document_version, load_schema, validate

THING = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "name", "digest"],
    "properties": {
        "schema_version": {"$ref": "defs.json#/$defs/schema_version"},
        "name": {"$ref": "defs.json#/$defs/identifier"},
        "digest": {"$ref": "defs.json#/$defs/sha256"},
        "items": {"type": "array", "items": {"$ref": "defs.json#/$defs/count"}},
    },
}
GOOD = {"schema_version": "1.0.0", "name": "a-thing", "digest": "0" * 64, "items": [1, 2]}


@pytest.fixture
def schema_folder(tmp_path, monkeypatch):
    """A private schemas/ folder with the shipped defs.json and a test schema ``thing``."""
    for version in ("1.0.0", "2.0.0"):
        folder = tmp_path / version
        folder.mkdir()
        shutil.copy(schemas_dir() / "1.0.0" / "defs.json", folder / "defs.json")
        (folder / "thing.json").write_text(json.dumps(THING))
    monkeypatch.setattr(schema_mod, "schemas_dir", lambda: tmp_path)
    return tmp_path


def test_shipped_schemas_are_valid_draft_2020_12():
    found = available_schemas()
    assert "opendata_catalogue" in found["1.0.0"]
    for version, names in found.items():
        jsonschema.Draft202012Validator.check_schema(
            json.loads((schemas_dir() / version / "defs.json").read_text())
        )
        for name in names:
            jsonschema.Draft202012Validator.check_schema(load_schema(name, version))


def test_valid_document_passes_with_refs_into_defs(schema_folder):
    validate(GOOD, "thing")
    validate(GOOD, "thing", "2.0.0")


def test_version_from_schema_version_or_dollar_schema():
    assert document_version({"schema_version": "1.0.0"}) == "1.0.0"
    assert document_version({"$schema": "https://x.invalid/schemas/1.0.0/thing.json"}) == "1.0.0"
    assert document_version({"$schema": "schemas/2.10.3/thing.json"}) == "2.10.3"


def test_missing_or_malformed_version_is_a_clear_error():
    with pytest.raises(SchemaValidationError, match=r"mydoc: \$: .*declares no schema version"):
        document_version({"name": "x"}, "mydoc")
    with pytest.raises(SchemaValidationError, match=r"schema_version: 'one' is not a version"):
        document_version({"schema_version": "one"})
    with pytest.raises(SchemaValidationError, match="expected a JSON object"):
        validate(["not", "a", "dict"], "thing")  # type: ignore[arg-type]


def test_unknown_version_and_schema_name(schema_folder):
    with pytest.raises(
        SchemaValidationError, match=r"unknown schema version '9.9.9' \(available: 1.0.0, 2.0.0\)"
    ):
        validate({**GOOD, "schema_version": "9.9.9"}, "thing")
    with pytest.raises(
        SchemaValidationError, match=r"no schema 'nothing' for version 1.0.0 \(available: thing\)"
    ):
        validate(GOOD, "nothing")


def test_error_names_document_json_path_and_reason(schema_folder):
    bad = {**GOOD, "digest": "XYZ", "items": [1, -2]}
    with pytest.raises(SchemaValidationError) as info:
        validate(bad, "thing", name="bad.json")
    text = str(info.value)
    assert text.startswith("bad.json does not validate against schema thing 1.0.0")
    assert "$.digest: 'XYZ' does not match" in text
    assert "$.items[1]: -2 is less than the minimum of 0" in text
    assert info.value.json_path == "$.digest"
    assert "does not match" in info.value.reason


def test_missing_required_property_reported_at_parent(schema_folder):
    doc = {k: v for k, v in GOOD.items() if k != "digest"}
    with pytest.raises(SchemaValidationError, match=r"\$: 'digest' is a required property"):
        validate(doc, "thing")


def test_many_errors_are_summarised(schema_folder):
    doc = {**GOOD, "items": [-1] * 12}
    with pytest.raises(SchemaValidationError, match=r"\.\.\. and 7 more"):
        validate(doc, "thing")
