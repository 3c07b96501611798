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
import os
from functools import cache
from pathlib import Path
from typing import Any

from jetfm_coffea.errors import MissingCollectionError
from jetfm_coffea.opendata.catalogue import load_catalogue
from jetfm_coffea.opendata.errors import UnknownLumiMaskError

__all__ = [
    "apply_lumimask",
    "golden_json_path",
    "load_lumimask",
    "lumimask_for",
    "lumimask_provenance",
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


@cache
def _lumimask(path: Path, mtime_ns: int):
    from coffea.lumi_tools import LumiMask

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
