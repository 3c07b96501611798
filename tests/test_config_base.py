"""The one config loader: every YAML config reads and fails the same way."""

from __future__ import annotations

import pytest

from jetfm_coffea.config_base import config_data, read_config_file, validate_config
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.config import load_task_config
from jetfm_coffea.jobs.shards import load_build_config
from jetfm_coffea.selection.blinding import load_blinding
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config


@pytest.mark.parametrize(
    ("load", "what"),
    [
        (load_pretrain_config, "pretraining config"),
        (load_task_config, "task config"),
        (load_build_config, "build config"),
        (load_blinding, "blinding config"),
    ],
)
def test_every_loader_names_the_unreadable_file(tmp_path, load, what):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")  # unclosed list: invalid YAML
    with pytest.raises(ConfigError, match=f"cannot read {what} .*bad.yaml"):
        load(bad)


@pytest.mark.parametrize(
    ("load", "what"),
    [(load_pretrain_config, "pretraining config"), (load_task_config, "task config")],
)
def test_a_list_is_not_a_config(tmp_path, load, what):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=f"{what} .*list.yaml: expected a mapping, got list"):
        load(path)


def test_file_dict_and_instance_give_the_same_config(tmp_path):
    path = tmp_path / "pre.yaml"
    path.write_text("train:\n  steps: 7\n")
    from_file = load_pretrain_config(path)
    assert from_file.train.steps == 7
    assert load_pretrain_config({"train": {"steps": 7}}) == from_file
    again = load_pretrain_config(from_file, **{"train.steps": 9})
    assert again.train.steps == 9 and from_file.train.steps == 7  # a fresh copy


def test_sections_and_invalid_fields(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text("augment:\n  steps: []\ntokens: {}\n")
    assert config_data(path, what="x", section="augment") == {"steps": []}
    with pytest.raises(ConfigError, match=r"(?s)invalid pretraining config: .*train.steps"):
        validate_config(PretrainConfig, {"train": {"steps": "many"}}, what="pretraining config")
    with pytest.raises(ConfigError, match=r"cannot read x .*missing.yaml"):
        read_config_file(tmp_path / "missing.yaml", what="x")
