"""Certified-luminosity (golden JSON) masks for collision data, via ``coffea.lumi_tools``.

A processor filters collision data and records which mask it used::

    from jetfm_coffea.opendata import apply_lumimask, lumimask_provenance

    golden = events.metadata.get("golden_json")          # from the fileset metadata
    events = apply_lumimask(events, golden)              # no-op when golden is None (MC)
    provenance["lumimask"] = lumimask_provenance(golden)  # name + sha256

``golden_json`` is the file name of a golden JSON shipped with the catalogue
(``jetfm opendata show`` lists them) or a path to any golden JSON file. Works on eager and
virtual NanoEvents / awkward arrays and on dask-awkward arrays (the mask stays lazy).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jetfm_coffea.errors import ConfigError, MissingCollectionError
from jetfm_coffea.opendata.catalogue import load_catalogue
from jetfm_coffea.opendata.errors import UnknownLumiMaskError

__all__ = [
    "GoldenJSONError",
    "apply_lumimask",
    "golden_json_path",
    "load_lumimask",
    "lumimask_for",
    "lumimask_provenance",
    "read_golden_json",
]

GoldenJSON = str | os.PathLike[str]


def golden_json_path(golden_json: GoldenJSON) -> Path:
    """Resolve a shipped golden JSON name, or an existing file path, to a file path."""
    catalogue = load_catalogue()
    name = os.fspath(golden_json)
    if name in catalogue.lumimasks:
        return catalogue.lumimasks[name].path
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    raise UnknownLumiMaskError(name, catalogue.lumimasks)


@cache
def _sha256(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class GoldenJSONError(ConfigError):
    """A golden JSON file is not valid JSON or not ``{"run": [[first, last], ...]}``."""

    def __init__(self, path: Path | str, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line else self.path
        super().__init__(f"golden JSON {where}: {reason}")


def _line_of(text: str, run: str) -> int | None:
    """1-based line where the key ``"run"`` appears in ``text`` (None if not found)."""
    at = text.find(f'"{run}"')
    return None if at < 0 else text.count("\n", 0, at) + 1


def read_golden_json(path: str | os.PathLike[str]) -> dict[int, list[tuple[int, int]]]:
    """Parse and check a golden JSON: ``{run: [(first, last), ...]}`` with ints, first <= last.

    Raises :class:`GoldenJSONError` naming the file and the line (and run) of the problem:
    invalid JSON, a run that is not an integer, ranges that are not ``[first, last]`` pairs
    of positive integers with ``first <= last``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise GoldenJSONError(path, err.lineno, f"not valid JSON ({err.msg})") from err
    if not isinstance(document, dict):
        raise GoldenJSONError(path, 1, "expected an object {run: [[first, last], ...]}")
    out: dict[int, list[tuple[int, int]]] = {}
    for run, ranges in document.items():
        line = _line_of(text, run)
        if not run.isdigit():
            raise GoldenJSONError(path, line, f"run {run!r} is not a run number")
        if not isinstance(ranges, list):
            raise GoldenJSONError(path, line, f"run {run}: expected a list of [first, last]")
        pairs = []
        for item in ranges:
            ok = (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item)
                and item[0] <= item[1]
            )
            if not ok:
                raise GoldenJSONError(
                    path,
                    line,
                    f"run {run}: malformed luminosity-section range {item!r} "
                    "(expected [first, last] with 0 < first <= last)",
                )
            pairs.append((item[0], item[1]))
        out[int(run)] = pairs
    return out


@cache
def _lumimask(path: Path, mtime_ns: int):
    from coffea.lumi_tools import LumiMask

    read_golden_json(path)  # a clear error naming file and line before coffea parses it
    return LumiMask(str(path))


def load_lumimask(golden_json: GoldenJSON):
    """Return the ``coffea.lumi_tools.LumiMask`` of a golden JSON (cached per file)."""
    path = golden_json_path(golden_json)
    return _lumimask(path, path.stat().st_mtime_ns)


def lumimask_provenance(golden_json: GoldenJSON | None) -> dict[str, Any] | None:
    """What to record in provenance: ``{"golden_json", "sha256", "record_id"}``; None for None.

    ``record_id`` is the portal record of a shipped golden JSON (matched by content, so a path
    to a copy of a published file is recognised too), None for any other file.
    """
    if golden_json is None:
        return None
    path = golden_json_path(golden_json)
    digest = _sha256(path, path.stat().st_mtime_ns)
    # a shipped golden JSON is recognised by its content, however it was named
    known = [m for m in load_catalogue().lumimasks.values() if m.sha256 == digest]
    return {
        "golden_json": known[0].name if known else path.name,
        "sha256": digest,
        "record_id": known[0].record_id if known else None,
    }


def _field(events: Any, name: str) -> Any:
    fields = getattr(events, "fields", None)
    if fields is None or name not in fields:
        return None
    return events[name]


def lumimask_for(events: Any, golden_json: GoldenJSON) -> Any:
    """Boolean mask of the events whose (run, luminosityBlock) the golden JSON certifies.

    ``events`` is any record array with ``run`` and ``luminosityBlock`` fields (NanoEvents,
    awkward or dask-awkward); the mask has the same kind (dask-awkward stays lazy).
    """
    runs = _field(events, "run")
    lumis = _field(events, "luminosityBlock")
    missing = [n for n, v in (("run", runs), ("luminosityBlock", lumis)) if v is None]
    if missing:
        raise MissingCollectionError(
            "run/luminosityBlock",
            missing=missing,
        )
    return load_lumimask(golden_json)(runs, lumis)


def apply_lumimask(events: Any, golden_json: GoldenJSON | None) -> Any:
    """Keep only certified events; ``golden_json=None`` (simulation) returns ``events``.

    Raises :class:`~jetfm_coffea.errors.MissingCollectionError` when the events have no
    ``run``/``luminosityBlock`` and :class:`UnknownLumiMaskError` for an unknown mask name.
    """
    if golden_json is None:
        return events
    return events[lumimask_for(events, golden_json)]
