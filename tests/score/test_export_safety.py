"""``jetfm export --overwrite`` never deletes the model it exports, and replaces transactionally."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.score import read_model_info
from jetfm_coffea.score.export import export_model, read_manifest


@pytest.fixture
def run_in_folder(tiny_run, tmp_path):
    """``p/run`` (a copy of the tiny classifier run) and ``p/notes.txt`` beside it."""
    parent = tmp_path / "p"
    run = shutil.copytree(tiny_run, parent / "run")
    (parent / "notes.txt").write_text("x\n")
    return parent, run


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_export_onto_a_folder_holding_the_model_is_refused(run_in_folder):
    parent, run = run_in_folder
    before = _tree(parent)
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(parent), "--overwrite"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"--out {parent} contains the model folder {run}" in " ".join(result.output.split())
    assert _tree(parent) == before  # the run and its neighbours are untouched
    assert read_model_info(run).path == str(run)  # the run still loads as a model


@pytest.mark.parametrize("where", ["same", "inside"])
def test_export_onto_or_into_the_model_is_refused(run_in_folder, where):
    _, run = run_in_folder
    out = run if where == "same" else run / "export"
    before = _tree(run)
    with pytest.raises(ConfigError, match="model folder"):
        export_model(run, out, formats=(), overwrite=True)
    assert _tree(run) == before


def test_overwrite_failing_midway_keeps_the_old_export(tiny_run, tmp_path, monkeypatch):
    out = export_model(tiny_run, tmp_path / "exp", formats=(), model_version="1.0.0")
    old = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("jetfm_coffea.score.export.read_data_sheet", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_model(tiny_run, out, formats=(), overwrite=True, model_version="2.0.0")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # no staging left behind
    monkeypatch.undo()
    export_model(tiny_run, out, formats=(), overwrite=True, model_version="2.0.0")
    assert json.loads((out / "manifest.json").read_text())["model_version"] == "2.0.0"
    assert read_manifest(out)["model_version"] == "2.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
