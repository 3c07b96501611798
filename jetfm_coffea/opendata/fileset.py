"""Build coffea filesets from the Open Data catalogue.

The output is coffea's fileset format, accepted as is by ``coffea.dataset_tools``
(``preprocess``, ``max_files``...) and by ``NanoEventsFactory.from_root``::

    {"agc2015_ttbar_nominal": {
        "files": {"https://.../0000.root": "Events", ...},
        "metadata": {"record_ids": [19980, 19981], "year": 2015, "sqrts_tev": 13,
                     "is_data": False, "process": "ttbar", "xsec": 729.84, ...}}}

Collision data carry ``"golden_json"`` (a name :func:`apply_lumimask` resolves) and its
``"golden_json_sha256"``; simulation carries ``"xsec"`` in pb (None when no source has one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.opendata.catalogue import Catalogue, Dataset, load_catalogue
from jetfm_coffea.opendata.errors import FileListUnavailableError, MissingCrossSectionError

__all__ = ["PROTOCOLS", "build_fileset", "dataset_metadata", "write_fileset"]

#: URL schemes a fileset can be restricted to (``None``: each file's primary URL)
PROTOCOLS = ("root", "https")


def dataset_metadata(
    dataset: Dataset,
    catalogue: Catalogue,
    *,
    xsec: float | None = None,
    nevents: int | None = None,
    nfiles: int | None = None,
) -> dict[str, Any]:
    """The fileset ``metadata`` of one catalogue dataset (JSON-serialisable)."""
    meta: dict[str, Any] = {
        "dataset": dataset.name,
        "title": dataset.title,
        "record_ids": list(dataset.record_ids),
        "year": dataset.year,
        "sqrts_tev": dataset.sqrts_tev,
        "is_data": dataset.is_data,
        "process": dataset.process,
        "data_format": dataset.data_format,
        "treename": dataset.treename,
        "nevents": nevents,
        "nfiles": nfiles,
        "nevents_total": dataset.nevents,
        "nfiles_total": dataset.nfiles,
        "catalogue_schema_version": catalogue.schema_version,
    }
    if dataset.variation is not None:
        meta["variation"] = dataset.variation
    if dataset.era is not None:
        meta["era"] = dataset.era
    if dataset.is_data:
        mask = catalogue.lumimasks[dataset.golden_json]
        meta["golden_json"] = mask.name
        meta["golden_json_sha256"] = mask.sha256
        meta["golden_json_record_id"] = mask.record_id
        meta["certified_at_production"] = dataset.certified_at_production  # None: unknown
    else:
        meta["xsec"] = xsec if xsec is not None else dataset.xsec_pb
    return meta


def build_fileset(
    names: str | Iterable[str],
    *,
    max_files: int | None = None,
    protocol: str | None = None,
    require_xsec: bool = False,
    xsec: Mapping[str, float] | None = None,
    catalogue: Catalogue | None = None,
) -> dict[str, dict[str, Any]]:
    """Coffea fileset ``{name: {"files": {url: treename}, "metadata": {...}}}`` for datasets.

    Parameters
    ----------
    names
        Catalogue dataset names (unknown names raise ``UnknownDatasetError`` with close matches).
    max_files
        Keep the first ``max_files`` files of each dataset (None: all).
    protocol
        ``"root"`` or ``"https"``: use each file's URL of that scheme (primary or mirror);
        None uses the primary URL.
    require_xsec
        Raise ``MissingCrossSectionError`` for simulation without a cross-section.
    xsec
        Cross-sections in pb that override (or supply) the catalogue's, by dataset name.
    catalogue
        Defaults to the shipped catalogue.
    """
    catalogue = catalogue or load_catalogue()
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ConfigError("no dataset names given")
    if max_files is not None and max_files < 1:
        raise ConfigError(f"max_files must be at least 1, got {max_files}")
    if protocol is not None and protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    xsec = dict(xsec or {})
    datasets = [catalogue.get(n) for n in dict.fromkeys(names)]  # unknown names fail first
    for name in xsec:
        ds = catalogue.get(name)
        if ds.is_data:
            raise ConfigError(f"{name} is collision data: it has no cross-section")
        if not xsec[name] > 0:
            raise ConfigError(f"cross-section of {name} must be positive, got {xsec[name]}")
    if require_xsec:
        missing = [
            ds.name
            for ds in datasets
            if not ds.is_data and ds.xsec_pb is None and ds.name not in xsec
        ]
        if missing:
            raise MissingCrossSectionError(missing)

    fileset: dict[str, dict[str, Any]] = {}
    for ds in datasets:
        if not ds.has_files:
            raise FileListUnavailableError(ds.name, ds.record_ids)
        chosen = ds.files[:max_files] if max_files is not None else ds.files
        files: dict[str, str] = {}
        for f in chosen:
            url = f.url_for(protocol)
            if url is None:
                raise ConfigError(
                    f"{ds.name}: no {protocol}:// URL for {f.url}; "
                    f"try another protocol (or none: the primary URLs)"
                )
            files[url] = ds.treename
        counts = [f.nevents for f in chosen]
        fileset[ds.name] = {
            "files": files,
            "metadata": dataset_metadata(
                ds,
                catalogue,
                xsec=xsec.get(ds.name),
                nevents=sum(counts) if None not in counts else None,  # type: ignore[arg-type]
                nfiles=len(files),
            ),
        }
    return fileset


def write_fileset(fileset: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a fileset as JSON (coffea reads it back with ``json.load``); returns the path."""
    out = Path(path)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fileset, indent=2) + "\n", encoding="utf-8")
    return out
