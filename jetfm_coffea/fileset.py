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
import stat
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetfm_coffea.errors import ConfigError, InputFileError, MissingBranchesError

__all__ = [
    "BadFile",
    "FileCheck",
    "InputInfo",
    "absolute_path",
    "check_files",
    "load_fileset",
    "local_file_problem",
    "read_input",
]

DEFAULT_TREE = "Events"
#: The event-data classes jetfm reads (uproot and coffea read both).
EVENT_CLASSES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")
#: Why a file without event ids cannot go through the pipeline (the shipped muons-only
#: DoubleMuParked sample is such a file).
NO_EVENT_IDS = (
    " -- run/luminosityBlock/event identify every event in shards, splits, k-fold scoring "
    "and the certified-luminosity mask; a file without them (like the shipped muons-only "
    "DoubleMuParked sample) serves only 'jetfm augment-check'"
)


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


def _normalise(
    fileset: dict[str, Any], treename: str, where: str = "fileset"
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for dataset, spec in fileset.items():
        if isinstance(spec, list | tuple):
            spec = {"files": list(spec)}
        if not isinstance(spec, dict) or "files" not in spec:
            raise ConfigError(f"{where}: dataset {dataset!r} must have a 'files' list or mapping")
        files = spec["files"]
        if isinstance(files, str):
            files = [files]
        if isinstance(files, list | tuple):
            files = {str(f): treename for f in files}
        if not isinstance(files, dict):
            raise ConfigError(
                f"{where}: dataset {dataset!r}: 'files' must be a list of paths or a mapping "
                f"path -> tree name, not {type(files).__name__} {files!r}"
            )
        if not files:
            raise ConfigError(f"{where}: dataset {dataset!r} has no files ('files' is empty)")
        names = {}
        for path, tree in files.items():
            name = tree.get("object_path", treename) if isinstance(tree, dict) else tree
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    f"{where}: dataset {dataset!r}: file {path!r}: the tree name must be a "
                    f"string (or {{'object_path': NAME}}), not {tree!r}"
                )
            names[str(path)] = name
        files = names
        raw = spec.get("metadata")
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(
                f"{where}: dataset {dataset!r}: 'metadata' must be a mapping, "
                f"not {type(raw).__name__} {raw!r}"
            )
        metadata = dict(raw or {})
        metadata.pop("dataset", None)  # coffea reserves this key and sets it itself
        out[str(dataset)] = {**spec, "files": files, "metadata": metadata}
    return out


def load_fileset(source: str | Path | dict, treename: str = DEFAULT_TREE) -> dict[str, dict]:
    """Load a coffea fileset from a JSON file, a dict, or a single ROOT file path.

    Local file paths come back absolute: those of a JSON file relative to its folder,
    those of a dict or a ROOT path relative to the working directory.
    """
    if isinstance(source, dict):
        fileset = _normalise(source, treename, "fileset")
        for spec in fileset.values():
            spec["files"] = {absolute_path(f): tree for f, tree in spec["files"].items()}
        return fileset
    path = Path(source)
    if path.suffix.lower() == ".json":  # fs.JSON too
        problem = local_file_problem(str(path))
        if problem is not None:
            raise InputFileError(str(path), f"cannot read fileset: {problem}")
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise InputFileError(str(path), f"cannot read fileset: {err.strerror or err}") from err
        except json.JSONDecodeError as err:
            raise InputFileError(str(path), f"not a valid JSON fileset: {err}") from err
        if not isinstance(data, dict):
            raise InputFileError(str(path), "a fileset is a JSON object of datasets")
        if not data:
            raise InputFileError(str(path), "the fileset lists no datasets")
        fileset = _normalise(data, treename, str(path))
        for spec in fileset.values():  # relative file paths are relative to the JSON file
            spec["files"] = {
                absolute_path(f, path.parent): tree for f, tree in spec["files"].items()
            }
        return fileset
    name = path.name.removesuffix(".root") or "dataset"
    return _normalise({name: {"files": {absolute_path(str(source)): treename}}}, treename)


def local_file_problem(path: str) -> str | None:
    """Why the local ``path`` cannot be read as an input without risk, or None if it can.

    Checked with ``stat`` before any open, so nothing blocks: a named pipe, a device, a
    socket or a directory is refused up front (reading a FIFO waits forever for a writer),
    as are a missing path, a symbolic-link loop and an empty (0-byte) file. Remote URLs
    (``root://``, ``https://``) are not checked here (None).
    """
    if "://" in path and not path.startswith("file://"):
        return None
    local = path.removeprefix("file://")
    try:
        info = os.stat(local)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(local) else "file does not exist"
    except OSError as err:  # ELOOP: a symbolic-link loop; EACCES...
        return f"cannot be read: {err.strerror or err}"
    mode = info.st_mode
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a named pipe (FIFO): reading it could block forever",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    for test, kind in kinds.items():
        if test(mode):
            return f"is {kind}, not a regular file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if info.st_size == 0:
        return "is empty (0 bytes)"
    if not os.access(local, os.R_OK):
        return "cannot be read: permission denied"
    return None


@dataclass(frozen=True)
class InputInfo:
    """One readable input: its event tree (a TTree or an RNTuple), entries and file uuid."""

    path: str
    tree: str
    n_entries: int
    uuid: str
    kind: str  # "TTree" or "ROOT::RNTuple"


def _synthesised_branches() -> frozenset[str]:
    """Branches coffea's NanoAOD schema makes itself when a file lacks them."""
    from coffea.nanoevents import NanoAODSchema

    return frozenset(NanoAODSchema.full_like_items)


def _missing_branches(
    keys: set[str], required: Mapping[str, Sequence[str]], kind: str
) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    made = _synthesised_branches()
    for name, branches in required.items():
        need = [b for b in branches if b not in made]
        if kind == "TTree" and f"{name}_eta" in need:  # a jagged collection: coffea's
            need = [f"n{name}", *need]  # offsets come from its counter branch
        lost = [b for b in need if b not in keys]
        if lost:
            missing[name] = lost
    return missing


def read_input(
    path: str,
    tree: str = DEFAULT_TREE,
    required: Mapping[str, Sequence[str]] | None = None,
    *,
    timeout: float = 30,
    retries: int = 2,
    last_entry: bool = False,
) -> InputInfo:
    """Open one input and check it can be processed; raise :class:`InputFileError` if not.

    Local paths are checked first (:func:`local_file_problem`: nothing is opened that
    could block); remote ones are opened with ``timeout`` and ``retries``. The event
    tree must be a TTree or an RNTuple with entries; ``required`` (collection ->
    branches, :func:`jetfm_coffea.tokens.build.required_branches`) must all be present,
    else :class:`MissingBranchesError` names the file and every missing collection.
    ``last_entry`` also reads the last entry of the first branch (a truncated file fails
    here, not in the middle of a run).
    """
    from jetfm_coffea.opendata.remote import ReadOptions, open_file

    problem = local_file_problem(path)
    if problem is not None:
        raise InputFileError(path, problem)
    try:
        fh = open_file(path, ReadOptions(timeout=timeout, retries=retries, treename=tree))
    except InputFileError as err:
        if "://" in path and not path.startswith("file://"):
            raise  # remote: "unreachable after N attempt(s): ..." says it
        raise InputFileError(path, f"not a readable ROOT file ({err.reason})") from err
    with fh:
        try:
            if tree not in fh:
                raise InputFileError(path, f"no tree {tree!r} in the file")
            kind = fh.classname_of(tree)
            if kind not in EVENT_CLASSES:
                raise InputFileError(path, f"{tree!r} is a {kind}, not a TTree or an RNTuple")
            events = fh[tree]
            n = int(events.num_entries)
            fuuid = str(uuidlib.UUID(bytes=fh.file.fUUID))
            keys = set(events.keys())
        except InputFileError:
            raise
        except Exception as err:  # uproot raises many kinds for a damaged file
            raise InputFileError(
                path, f"not a readable ROOT file ({type(err).__name__}: {err})"
            ) from err
        if n == 0:
            raise InputFileError(path, f"tree {tree!r} has no events")
        if required:
            missing = _missing_branches(keys, required, kind)
            if missing:
                hint = NO_EVENT_IDS if "event ids" in missing else ""
                raise MissingBranchesError(path, missing, hint)
        if last_entry and keys:
            try:
                first = events.keys()[0]
                events[first].array(entry_start=n - 1, entry_stop=n, library="np")
            except Exception as err:
                first_line = (str(err).splitlines() or [""])[0]
                raise InputFileError(
                    path, f"truncated? {type(err).__name__}: {first_line}"
                ) from err
    return InputInfo(path, tree, n, fuuid, kind)


@dataclass
class BadFile:
    """A file that could not be used, and why."""

    dataset: str
    path: str
    reason: str
    error: InputFileError | None = field(default=None, repr=False, compare=False)


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
    required: Mapping[str, Sequence[str]] | None = None,
) -> FileCheck:
    """Open every file once (remote ones with timeout and retries), with its own tree name.

    A missing, truncated, non-ROOT or non-regular file, or one lacking ``required``
    branches (:func:`read_input`), raises :class:`InputFileError` naming it (every bad
    file is listed), or with ``skip_bad_files`` is left out and reported in
    :attr:`FileCheck.bad` while every other file is kept.
    """
    jobs = [
        (name, path, tree) for name, spec in fileset.items() for path, tree in spec["files"].items()
    ]

    def run(job: tuple[str, str, str]) -> InputInfo | BadFile:
        name, path, tree = job
        try:
            return read_input(
                path, tree, required, timeout=timeout, retries=retries, last_entry=True
            )
        except InputFileError as err:
            return BadFile(name, path, err.reason, err)

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        results = list(pool.map(run, jobs))
    bad = [r for r in results if isinstance(r, BadFile)]
    if bad and not skip_bad_files:
        if len(bad) == 1:
            raise bad[0].error or InputFileError(bad[0].path, bad[0].reason)
        listing = "; ".join(f"{b.path}: {b.reason}" for b in bad)
        raise InputFileError(f"{len(bad)} files", listing)
    good: dict[str, dict] = {}
    for (name, path, tree), result in zip(jobs, results, strict=True):
        if isinstance(result, InputInfo):
            spec = good.setdefault(name, {**fileset[name], "files": {}})
            spec["files"][path] = tree
    return FileCheck(
        fileset=good,
        entries={r.path: r.n_entries for r in results if isinstance(r, InputInfo)},
        bad=bad,
    )
