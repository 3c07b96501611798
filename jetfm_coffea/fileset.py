"""Filesets in coffea's JSON format: loading, normalising and checking the files.

A fileset maps dataset names to ``{"files": {path: treename}, "metadata": {...}}``.
A single ROOT path is accepted wherever a fileset is, as a one-file dataset. This is the
one fileset reader of the package: local paths come back absolute (relative ones are
relative to the fileset JSON's folder, or to the working directory for a dict or a ROOT
path), so what a run records stays valid from any directory.

>>> fs = load_fileset({"ttbar": ["/data/tt_1.root", "root://eos//tt_2.root"]})
>>> fs["ttbar"]["files"]
{'/data/tt_1.root': 'Events', 'root://eos//tt_2.root': 'Events'}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetfm_coffea.errors import ConfigError, InputFileError

__all__ = ["BadFile", "FileCheck", "absolute_path", "check_files", "load_fileset"]

DEFAULT_TREE = "Events"


def absolute_path(file: str, folder: str | Path = ".") -> str:
    """``file`` made absolute against ``folder`` (URLs and absolute paths stay as they are).

    >>> absolute_path("root://eospublic.cern.ch//a.root", "/data")
    'root://eospublic.cern.ch//a.root'
    >>> absolute_path("../b.root", "/data/sub")
    '/data/b.root'
    """
    if "://" in file or Path(file).is_absolute():
        return file
    return os.path.abspath(Path(folder) / file)


def _normalise(fileset: dict[str, Any], treename: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for dataset, spec in fileset.items():
        if isinstance(spec, list | tuple):
            spec = {"files": list(spec)}
        if not isinstance(spec, dict) or "files" not in spec:
            raise ConfigError(f"fileset entry {dataset!r} must have a 'files' list or mapping")
        files = spec["files"]
        if isinstance(files, list | tuple):
            files = {str(f): treename for f in files}
        files = {
            str(path): (tree.get("object_path", treename) if isinstance(tree, dict) else tree)
            for path, tree in files.items()
        }
        metadata = dict(spec.get("metadata") or {})
        metadata.pop("dataset", None)  # coffea reserves this key and sets it itself
        out[str(dataset)] = {**spec, "files": files, "metadata": metadata}
    return out


def load_fileset(source: str | Path | dict, treename: str = DEFAULT_TREE) -> dict[str, dict]:
    """Load a coffea fileset from a JSON file, a dict, or a single ROOT file path.

    Local file paths come back absolute: those of a JSON file relative to its folder,
    those of a dict or a ROOT path relative to the working directory.
    """
    if isinstance(source, dict):
        fileset = _normalise(source, treename)
        for spec in fileset.values():
            spec["files"] = {absolute_path(f): tree for f, tree in spec["files"].items()}
        return fileset
    path = Path(source)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise InputFileError(str(path), f"cannot read fileset: {err.strerror or err}") from err
        except json.JSONDecodeError as err:
            raise InputFileError(str(path), f"not a valid JSON fileset: {err}") from err
        if not isinstance(data, dict):
            raise InputFileError(str(path), "a fileset is a JSON object of datasets")
        fileset = _normalise(data, treename)
        for spec in fileset.values():  # relative file paths are relative to the JSON file
            spec["files"] = {
                absolute_path(f, path.parent): tree for f, tree in spec["files"].items()
            }
        return fileset
    name = path.name.removesuffix(".root") or "dataset"
    return _normalise({name: {"files": {absolute_path(str(source)): treename}}}, treename)


@dataclass
class BadFile:
    """A file that could not be used, and why."""

    dataset: str
    path: str
    reason: str


@dataclass
class FileCheck:
    """Result of :func:`check_files`: the usable fileset and the files left out."""

    fileset: dict[str, dict]
    entries: dict[str, int] = field(default_factory=dict)
    bad: list[BadFile] = field(default_factory=list)


def check_files(
    fileset: dict[str, dict],
    skip_bad_files: bool = False,
    timeout: float = 30,
    retries: int = 2,
) -> FileCheck:
    """Open every file once (remote ones with timeout and retries).

    A missing, truncated or non-ROOT file raises :class:`InputFileError` naming it
    (every bad file is listed), or with ``skip_bad_files`` is left out and reported
    in :attr:`FileCheck.bad` while every other file is kept.
    """
    from jetfm_coffea.opendata.remote import ReadOptions, check_fileset

    options = ReadOptions(timeout=timeout, retries=retries)
    good, reports = check_fileset(fileset, skip_bad=True, options=options, raise_if_none=False)
    failures = [r for r in reports if not r.ok]
    if failures and not skip_bad_files:
        if len(failures) == 1:
            raise InputFileError(failures[0].url, failures[0].error or "unreadable")
        listing = "; ".join(f"{r.url}: {r.error}" for r in failures)
        raise InputFileError(f"{len(failures)} files", listing)
    return FileCheck(
        fileset=good,
        entries={r.url: int(r.nevents or 0) for r in reports if r.ok},
        bad=[BadFile(r.dataset or "", r.url, r.error or "unreadable") for r in failures],
    )
