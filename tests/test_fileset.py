"""Filesets and bad input files: clear errors naming the file; skip-bad-files keeps the rest."""

from __future__ import annotations

import json
import re

import pytest

from jetfm_coffea.errors import InputFileError
from jetfm_coffea.fileset import check_files, load_fileset


@pytest.fixture
def bad_files(tmp_path, singlemu):
    truncated = tmp_path / "truncated.root"
    data = singlemu.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.root"
    text.write_text("this is not a ROOT file\n")
    return {"missing": tmp_path / "missing.root", "truncated": truncated, "text": text}


def test_load_fileset_forms(tmp_path, singlemu):
    assert load_fileset(singlemu) == {
        "Run2012B_SingleMu_10000": {"files": {str(singlemu): "Events"}, "metadata": {}}
    }
    path = tmp_path / "fs.json"
    path.write_text(json.dumps({"mu": {"files": [str(singlemu)], "metadata": {"label": 1}}}))
    fs = load_fileset(path)
    assert fs["mu"]["files"] == {str(singlemu): "Events"} and fs["mu"]["metadata"]["label"] == 1
    path.write_text("{not json")
    with pytest.raises(InputFileError, match=r"fs\.json.*JSON"):
        load_fileset(path)


@pytest.mark.parametrize("kind", ["missing", "truncated", "text"])
def test_bad_file_is_named(kind, bad_files, singlemu):
    bad = bad_files[kind]
    fileset = load_fileset({"d": {"files": [str(singlemu), str(bad)]}})
    with pytest.raises(InputFileError, match=re.escape(bad.name)):
        check_files(fileset)


def test_skip_bad_files_keeps_every_good_file(bad_files, singlemu, ttbar2015):
    files = [str(singlemu), *map(str, bad_files.values()), str(ttbar2015)]
    check = check_files(load_fileset({"d": {"files": files}}), skip_bad_files=True)
    assert sorted(b.path for b in check.bad) == sorted(map(str, bad_files.values()))
    assert list(check.fileset["d"]["files"]) == [str(singlemu), str(ttbar2015)]
    assert check.entries == {str(singlemu): 10_000, str(ttbar2015): 200}


def test_relative_paths_come_back_absolute(tmp_path, monkeypatch):
    """The one fileset reader: JSON paths relative to the JSON, ROOT paths to the cwd."""
    folder = tmp_path / "sets"
    folder.mkdir()
    path = folder / "fs.json"
    files = {"a.root": "Events", "../b.root": "Events", "root://host//c.root": "Events"}
    path.write_text(json.dumps({"d": {"files": files}}))
    monkeypatch.chdir(tmp_path)
    fs = load_fileset("sets/fs.json")
    assert list(fs["d"]["files"]) == [
        str(folder / "a.root"),
        str(tmp_path / "b.root"),
        "root://host//c.root",
    ]
    assert list(load_fileset("x.root")["x"]["files"]) == [str(tmp_path / "x.root")]
    from_dict = load_fileset({"d": ["a.root", "root://host//c.root"]})
    assert list(from_dict["d"]["files"]) == [str(tmp_path / "a.root"), "root://host//c.root"]
    assert load_fileset(from_dict) == from_dict  # loading a loaded fileset changes nothing
