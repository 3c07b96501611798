"""Locate data shipped with the package (schemas, Open Data catalogue, real CMS files).

In an installed wheel the top-level ``schemas/`` and ``opendata/`` folders live under
``jetfm_coffea/_data``; in a source checkout they sit beside the package. The real CMS
Open Data files the demo reads are package data in ``jetfm_coffea/_data/cms`` (their
provenance and SHA-256 in the README there); the tests' other files are in ``tests/data``.
``JETFM_TESTDATA`` (a folder with ``cms/``) overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CMS_PACKAGE_FILES",
    "DIMUON_2012",
    "GOLDEN_JSON_2012",
    "SINGLEMU_2012",
    "TESTDATA_ENV",
    "cms_file",
    "data_dir",
    "opendata_dir",
    "schemas_dir",
    "testdata_override",
]

_PKG = Path(__file__).resolve().parent

#: Environment variable naming a folder (with ``cms/``) that overrides the shipped files.
TESTDATA_ENV = "JETFM_TESTDATA"
#: Real CMS files shipped as package data (``jetfm demo``, ``jetfm augment-check``).
SINGLEMU_2012 = "Run2012B_SingleMu_10000.root"
DIMUON_2012 = "Run2012_DoubleMuParked_muons_100k.root"
CMS_PACKAGE_FILES = (SINGLEMU_2012, DIMUON_2012)
#: The catalogue's golden JSON (certified luminosity) of the 2012 (8 TeV) collision data.
GOLDEN_JSON_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``schemas`` or ``opendata``) of the package data."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"package data folder {name!r} not found next to {_PKG}")


def schemas_dir() -> Path:
    """Folder holding the versioned JSON schemas (``<version>/<name>.json``)."""
    return data_dir("schemas")


def opendata_dir() -> Path:
    """Folder holding the CMS Open Data catalogue."""
    return data_dir("opendata")


def testdata_override() -> Path | None:
    """The folder ``JETFM_TESTDATA`` names, or None when it is unset."""
    env = os.environ.get(TESTDATA_ENV)
    return Path(env) if env else None


def cms_file(name: str, search: tuple[Path, ...] = ()) -> Path:
    """Path of the real CMS file ``name``: ``$JETFM_TESTDATA/cms`` when set, else the
    package data, else the folders in ``search`` (the tests pass ``tests/data/cms``).

    Raises FileNotFoundError naming every folder looked in.
    """
    override = testdata_override()
    folders = [override / "cms"] if override else [_PKG / "_data" / "cms", *search]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    where = ", ".join(str(f) for f in folders)
    hint = f" (unset {TESTDATA_ENV} to use the shipped files)" if override else ""
    raise FileNotFoundError(f"CMS data file {name!r} not found in {where}{hint}")
