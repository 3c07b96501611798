"""Locate data shipped with the package (schemas, Open Data catalogue) and test data.

In an installed wheel the top-level ``schemas/`` and ``opendata/`` folders live under
``jetfm_coffea/_data``; in a source checkout they sit beside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "opendata_dir", "schemas_dir", "testdata_dir"]

_PKG = Path(__file__).resolve().parent


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


def testdata_dir() -> Path:
    """Folder of the shared test data; ``JETFM_TESTDATA`` overrides ``../shared/testdata``."""
    env = os.environ.get("JETFM_TESTDATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), _PKG.parent):
        candidate = base.parent / "shared" / "testdata"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "testdata"
