"""Token configuration: defaults, YAML, validation errors, committed JSON schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from jetfm_coffea._resources import schemas_dir
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import TokenConfig, load_token_config
from jetfm_coffea.tokens.config import token_config_json_schema


def test_defaults():
    cfg = TokenConfig()
    assert [c.name for c in cfg.collections] == ["Jet", "Muon", "Electron", "Photon", "MET"]
    assert cfg.n_tokens == 23
    assert cfg.feature_names[0] == "log_pt" and cfg.feature_names[-1] == "type_id"


def test_yaml_round_trip_and_hash(tmp_path):
    cfg = TokenConfig(max_tokens=16, order="pt")
    path = tmp_path / "tokens.yaml"
    path.write_text(cfg.to_yaml())
    back = load_token_config(path)
    assert back == cfg and back.hash() == cfg.hash()
    assert TokenConfig().hash() != cfg.hash()
    nested = tmp_path / "config.yaml"
    nested.write_text("tokens:\n  max_tokens: 8\n")
    assert load_token_config(nested).n_tokens == 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"features": ["log_pt", "rapidity"]}, "features"),
        ({"collections": [{"name": "Jet", "type_id": 1, "max_count": 0}]}, "max_count"),
        ({"collections": [{"name": "MET", "type_id": 5, "kind": "met", "max_count": 2}]}, "met"),
        ({"collections": []}, "at least one"),
        ({"colections": []}, "colections"),
        (
            {
                "collections": [
                    {"name": "Jet", "type_id": 1, "max_count": 2},
                    {"name": "Jet", "type_id": 2, "max_count": 2},
                ]
            },
            "unique",
        ),
    ],
)
def test_invalid_configs_raise_config_error(data, message):
    with pytest.raises(ConfigError, match=message):
        load_token_config(data)


def test_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_token_config(tmp_path / "nope.yaml")


def test_committed_json_schema_matches_model():
    committed = json.loads((schemas_dir() / "1.0.0" / "token_config.json").read_text())
    assert committed == token_config_json_schema(), "regenerate schemas/1.0.0/token_config.json"
    jsonschema.validate(TokenConfig().model_dump(mode="json"), committed)
