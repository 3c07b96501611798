"""The CMS Open Data catalogue: load, validate and look up datasets and golden JSONs.

The catalogue is ``opendata/catalogue.json`` (shipped as ``jetfm_coffea/_data/opendata``),
validated against ``schemas/<version>/opendata_catalogue.json`` when loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jetfm_coffea._resources import opendata_dir
from jetfm_coffea.errors import SchemaValidationError
from jetfm_coffea.opendata.errors import UnknownDatasetError
from jetfm_coffea.schema import validate

__all__ = [
    "CATALOGUE_FILE",
    "Catalogue",
    "CatalogueFile",
    "Dataset",
    "LumiMaskInfo",
    "get_dataset",
    "load_catalogue",
]

CATALOGUE_FILE = "catalogue.json"
SCHEMA_NAME = "opendata_catalogue"


@dataclass(frozen=True)
class CatalogueFile:
    """One file of a dataset: its primary URL, mirrors and event count (if known)."""

    url: str
    mirrors: tuple[str, ...] = ()
    nevents: int | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """Primary URL first, then the mirrors."""
        return (self.url, *self.mirrors)

    def url_for(self, protocol: str | None) -> str | None:
        """The first URL whose scheme is ``protocol`` (``root``, ``https``...); primary if None."""
        if protocol is None:
            return self.url
        for url in self.urls:
            if url.split("://", 1)[0].lower() == protocol.lower():
                return url
        return None


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry; see ``schemas/1.0.0/opendata_catalogue.json`` for each field."""

    name: str
    title: str
    record_ids: tuple[int, ...]
    year: int
    sqrts_tev: float
    is_data: bool
    data_format: str
    process: str
    nevents: int
    nfiles: int
    treename: str
    sources: tuple[str, ...]
    files: tuple[CatalogueFile, ...] = ()
    variation: str | None = None
    era: str | None = None
    doi: str | None = None
    cms_datasets: tuple[str, ...] = ()
    xsec_pb: float | None = None
    xsec_source: str | None = None
    golden_json: str | None = None
    certified_at_production: bool | None = None
    notes: str | None = None

    @property
    def has_files(self) -> bool:
        """Whether the catalogue lists this dataset's file URLs."""
        return bool(self.files)

    @classmethod
    def from_json(cls, name: str, entry: dict[str, Any]) -> Dataset:
        """Build from one (schema-valid) ``datasets`` entry of the catalogue document."""
        kwargs = dict(entry)
        kwargs["record_ids"] = tuple(entry["record_ids"])
        kwargs["sources"] = tuple(entry["sources"])
        kwargs["cms_datasets"] = tuple(entry.get("cms_datasets", ()))
        kwargs["files"] = tuple(
            CatalogueFile(f["url"], tuple(f.get("mirrors", ())), f.get("nevents"))
            for f in entry.get("files", ())
        )
        return cls(name=name, **kwargs)


@dataclass(frozen=True)
class LumiMaskInfo:
    """A golden JSON shipped with the catalogue (``opendata/lumimasks/<name>``)."""

    name: str
    record_id: int
    year: int
    sqrts_tev: float
    bytes: int
    adler32: str
    sha256: str
    sources: tuple[str, ...]
    url: str | None = None
    notes: str | None = None

    @property
    def path(self) -> Path:
        """Where the file lies in the installed package or checkout."""
        return opendata_dir() / "lumimasks" / self.name


@dataclass(frozen=True)
class Catalogue:
    """The whole catalogue: datasets, golden JSONs and the sources they cite."""

    schema_version: str
    datasets: dict[str, Dataset]
    lumimasks: dict[str, LumiMaskInfo]
    sources: dict[str, str]
    path: Path | None = None
    description: str = field(default="")

    def __getitem__(self, name: str) -> Dataset:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.datasets

    def __iter__(self) -> Iterator[Dataset]:
        """Iterate over the datasets (not their names), in catalogue order."""
        return iter(self.datasets.values())

    def __len__(self) -> int:
        return len(self.datasets)

    def get(self, name: str) -> Dataset:
        """The dataset ``name``; :class:`UnknownDatasetError` with close matches otherwise."""
        try:
            return self.datasets[name]
        except KeyError:
            raise UnknownDatasetError(name, self.datasets) from None

    def select(
        self,
        *,
        year: int | None = None,
        is_data: bool | None = None,
        contains: str | None = None,
        with_files: bool | None = None,
    ) -> list[Dataset]:
        """Datasets matching every given filter, in catalogue order."""
        out = []
        for ds in self.datasets.values():
            if year is not None and ds.year != year:
                continue
            if is_data is not None and ds.is_data != is_data:
                continue
            if contains is not None and contains.lower() not in ds.name.lower():
                continue
            if with_files is not None and ds.has_files != with_files:
                continue
            out.append(ds)
        return out

    @classmethod
    def from_document(cls, document: dict[str, Any], path: Path | None = None) -> Catalogue:
        """Validate a catalogue document and build the catalogue (cross-references checked)."""
        label = str(path) if path else "Open Data catalogue"
        validate(document, SCHEMA_NAME, name=label)
        masks = {
            name: LumiMaskInfo(name=name, **{**info, "sources": tuple(info["sources"])})
            for name, info in document["lumimasks"].items()
        }
        datasets = {name: Dataset.from_json(name, e) for name, e in document["datasets"].items()}
        problems = []
        for ds in datasets.values():
            if ds.golden_json is not None and ds.golden_json not in masks:
                problems.append(
                    f"$.datasets.{ds.name}.golden_json: {ds.golden_json!r} is not in lumimasks"
                )
            for tag in ds.sources:
                if tag not in document["sources"]:
                    problems.append(f"$.datasets.{ds.name}.sources: unknown source tag {tag!r}")
            if ds.files and len(ds.files) != ds.nfiles:
                problems.append(
                    f"$.datasets.{ds.name}.files: {len(ds.files)} files listed, "
                    f"nfiles is {ds.nfiles}"
                )
            counted = [f.nevents for f in ds.files]
            if counted and None not in counted and sum(counted) != ds.nevents:
                problems.append(
                    f"$.datasets.{ds.name}.files: events sum to {sum(counted)}, "
                    f"nevents is {ds.nevents}"
                )
        if problems:
            raise SchemaValidationError(f"{label} is inconsistent:\n  " + "\n  ".join(problems))
        return cls(
            schema_version=document["schema_version"],
            datasets=datasets,
            lumimasks=masks,
            sources=dict(document["sources"]),
            path=path,
            description=document.get("description", ""),
        )


@cache
def _load(path: Path, mtime_ns: int) -> Catalogue:
    document = json.loads(path.read_text(encoding="utf-8"))
    return Catalogue.from_document(document, path)


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Load (and validate) the catalogue; the shipped one unless ``path`` is given. Cached."""
    target = Path(path) if path is not None else opendata_dir() / CATALOGUE_FILE
    target = target.resolve()
    if not target.is_file():
        raise FileNotFoundError(f"Open Data catalogue not found: {target}")
    return _load(target, target.stat().st_mtime_ns)


def get_dataset(name: str, catalogue: Catalogue | None = None) -> Dataset:
    """Look up one dataset of the (shipped) catalogue by name."""
    return (catalogue or load_catalogue()).get(name)
