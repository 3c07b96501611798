"""The one atomic-write helper: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import json

import pytest

from jetfm_coffea.atomic import atomic_path, atomic_write_json, atomic_write_text
from jetfm_coffea.train import checkpoint


def test_replaces_a_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    atomic_write_json(path, {"x": [1, 2]}, sort_keys=True)
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    assert path.read_text().endswith("\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_old_import_path_is_the_same_helper(tmp_path):
    assert checkpoint.atomic_write_text is atomic_write_text
    checkpoint.atomic_write_text(tmp_path / "t.txt", "é")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "é"
