"""CMS Open Data: the dataset catalogue, coffea filesets, golden-JSON masks, remote reading.

>>> from jetfm_coffea.opendata import build_fileset, apply_lumimask
>>> fileset = build_fileset(["agc2015_ttbar_nominal"], max_files=2)  # doctest: +SKIP
"""

from __future__ import annotations

from jetfm_coffea.opendata.catalogue import (
    Catalogue,
    CatalogueFile,
    Dataset,
    LumiMaskInfo,
    get_dataset,
    load_catalogue,
)
from jetfm_coffea.opendata.errors import (
    FileListUnavailableError,
    MissingCrossSectionError,
    UnknownDatasetError,
    UnknownLumiMaskError,
    UnreachableFilesError,
)
from jetfm_coffea.opendata.fileset import PROTOCOLS, build_fileset, dataset_metadata, write_fileset
from jetfm_coffea.opendata.lumimask import (
    GoldenJSONError,
    apply_lumimask,
    golden_json_path,
    load_lumimask,
    lumimask_for,
    lumimask_provenance,
    read_golden_json,
)
from jetfm_coffea.opendata.remote import (
    FileReport,
    ReadOptions,
    check_file,
    check_fileset,
    ensure_handler,
    open_file,
)

__all__ = [
    "PROTOCOLS",
    "Catalogue",
    "CatalogueFile",
    "Dataset",
    "FileListUnavailableError",
    "FileReport",
    "GoldenJSONError",
    "LumiMaskInfo",
    "MissingCrossSectionError",
    "ReadOptions",
    "UnknownDatasetError",
    "UnknownLumiMaskError",
    "UnreachableFilesError",
    "apply_lumimask",
    "build_fileset",
    "check_file",
    "check_fileset",
    "dataset_metadata",
    "ensure_handler",
    "get_dataset",
    "golden_json_path",
    "load_catalogue",
    "load_lumimask",
    "lumimask_for",
    "lumimask_provenance",
    "open_file",
    "read_golden_json",
    "write_fileset",
]
