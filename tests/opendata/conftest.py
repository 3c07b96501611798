"""Fixtures of the Open Data tests: a catalogue with extra entries that point to local files."""

from __future__ import annotations

import copy
import json

import pytest

from jetfm_coffea._resources import opendata_dir
from jetfm_coffea.opendata import Catalogue

GOLDEN_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"


@pytest.fixture(scope="session")
def catalogue_document() -> dict:
    """The shipped catalogue document (a fresh deep copy is cheap to take from it)."""
    return json.loads((opendata_dir() / "catalogue.json").read_text())


@pytest.fixture(scope="session")
def local_catalogue(catalogue_document, singlemu, ttbar2015) -> Catalogue:
    """The shipped catalogue plus two datasets whose files are the local test files."""
    doc = copy.deepcopy(catalogue_document)
    doc["datasets"]["local_singlemu_2012"] = {
        "title": "10,000 Run2012B SingleMu events (test data)",
        "record_ids": [31127],
        "year": 2012,
        "era": "B",
        "sqrts_tev": 8,
        "is_data": True,
        "data_format": "slim NanoAOD",
        "process": "SingleMu",
        "nevents": 10000,
        "nfiles": 1,
        "treename": "Events",
        "golden_json": GOLDEN_2012,
        "files": [{"url": singlemu.as_uri(), "nevents": 10000}],
        "sources": ["S1"],
    }
    doc["datasets"]["local_ttbar_2015"] = {
        "title": "200 events of 2015 ttbar simulation (test data)",
        "record_ids": [19980],
        "year": 2015,
        "sqrts_tev": 13,
        "is_data": False,
        "data_format": "NanoAOD",
        "process": "ttbar",
        "xsec_pb": 729.84,
        "nevents": 200,
        "nfiles": 1,
        "treename": "Events",
        "files": [{"url": ttbar2015.as_uri(), "nevents": 200}],
        "sources": ["S3"],
    }
    return Catalogue.from_document(doc)
