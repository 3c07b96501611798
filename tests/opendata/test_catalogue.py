"""The shipped catalogue: schema-valid, consistent, and every fact matches its source file."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import zlib
from pathlib import Path

import pytest

from jetfm_coffea._resources import opendata_dir
from jetfm_coffea.errors import SchemaValidationError
from jetfm_coffea.opendata import (
    Catalogue,
    UnknownDatasetError,
    get_dataset,
    load_catalogue,
)
from jetfm_coffea.schema import validate

AGC_HTTPS = "https://xrootd-local.unl.edu:1094//store/user/AGC/nanoAOD/"
AGC_EOS = "root://eospublic.cern.ch//eos/opendata/cms/upload/agc/1.0.0/"


@pytest.fixture(scope="module")
def reference() -> Path:
    """The reference files the catalogue was built from, shipped in ``tests/data``."""
    return Path(__file__).resolve().parents[1] / "data" / "opendata-reference"


@pytest.fixture(scope="module")
def records_md(reference) -> str:
    return (reference / "cms_opendata_records.md").read_text()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_catalogue_validates_against_its_schema(catalogue_document):
    assert catalogue_document["schema_version"] == "1.0.0"
    validate(catalogue_document, "opendata_catalogue", name="catalogue.json")


def test_catalogue_loads_and_is_cached(catalogue):
    assert load_catalogue() is catalogue
    assert len(catalogue) >= 50
    assert catalogue.schema_version == "1.0.0"


def test_agc_entries_match_the_agc_json_exactly(catalogue, reference):
    agc = json.loads((reference / "agc_cms2015_nanoaod_inputs.json").read_text())
    seen = set()
    for process, variations in agc.items():
        for variation, info in variations.items():
            name = f"agc2015_ttbar_{variation}" if process == "ttbar" else f"agc2015_{process}"
            ds = catalogue[name]
            seen.add(name)
            assert (ds.process, ds.variation, ds.year, ds.sqrts_tev) == (
                process,
                variation,
                2015,
                13,
            )
            assert not ds.is_data and ds.golden_json is None
            assert [f.url for f in ds.files] == [f["path"] for f in info["files"]]
            assert [f.nevents for f in ds.files] == [f["nevts"] for f in info["files"]]
            assert ds.nevents == info["nevts_total"] == sum(f["nevts"] for f in info["files"])
            assert ds.nfiles == len(info["files"])
            for f in ds.files:  # the AGC input_from_eos rule
                assert f.mirrors == (AGC_EOS + f.url.removeprefix(AGC_HTTPS),)
            recids = {int(re.search(r"_(\d{5})_PU25ns", f.url).group(1)) for f in ds.files}
            assert set(ds.record_ids) == recids
    assert seen == {ds.name for ds in catalogue if ds.name.startswith("agc2015_")}


def test_agc_cross_sections_are_file_input_py_values(catalogue):
    expected = {
        "ttbar": 396.87 + 332.97,
        "single_top_s_chan": 2.0268 + 1.2676,
        "single_top_t_chan": (36.993 + 22.175) / 0.252,
        "single_top_tW": 37.936 + 37.906,
        "wjets": 61457 * 0.252,
    }
    for ds in catalogue.select(year=2015):
        assert ds.xsec_pb == pytest.approx(expected[ds.process], rel=1e-9), ds.name


def _md_row(md: str, recid: int) -> str:
    rows = [line for line in md.splitlines() if line.startswith(f"| {recid} |")]
    assert len(rows) == 1, f"record {recid}: {len(rows)} rows in the reference"
    return rows[0]


def test_portal_entries_match_the_records_reference(catalogue, records_md):
    portal = [ds for ds in catalogue if "S1" in ds.sources]
    assert len(portal) >= 40
    for ds in portal:
        (recid,) = ds.record_ids
        cells = [c.strip() for c in _md_row(records_md, recid).strip("|").split("|")]
        assert str(ds.nevents) in cells, ds.name
        assert str(ds.nfiles) in cells, ds.name
        if ds.doi:
            assert ds.doi.removeprefix("10.7483/OPENDATA.CMS.") in cells
        if ds.is_data and ds.year == 2016:
            assert ds.process == cells[1] and f"Run2016{ds.era}" == f"Run2016{cells[2]}"
        if ds.xsec_pb is not None:
            assert float(cells[-1]) == ds.xsec_pb


def test_data_entries_name_the_golden_json_of_their_year(catalogue):
    for ds in catalogue.select(is_data=True):
        mask = catalogue.lumimasks[ds.golden_json]
        assert (mask.year, mask.sqrts_tev) == (ds.year, ds.sqrts_tev), ds.name


def test_file_urls_only_where_a_source_gives_them(catalogue, records_md):
    listed = {ds.name for ds in catalogue.select(with_files=True)}
    assert listed == {ds.name for ds in catalogue if ds.name.startswith("agc2015_")} | {
        "Run2012BC_DoubleMuParked_Muons"
    }
    (url,) = [f.url for f in catalogue["Run2012BC_DoubleMuParked_Muons"].files]
    assert f"`{url}`" in records_md


def test_shipped_golden_jsons_are_the_published_files(catalogue, records_md):
    """Size and adler32 as the portal's records list them (the reference notes)."""
    assert len(catalogue.lumimasks) == 4
    published = {
        cells[1]: (int(cells[2]), cells[3])
        for cells in (line.split(" | ") for line in records_md.splitlines())
        if len(cells) > 4 and cells[1].startswith("Cert_")
    }
    for name, mask in catalogue.lumimasks.items():
        blob = mask.path.read_bytes()
        assert (len(blob), f"{zlib.adler32(blob):08x}") == published[name], name
        assert len(blob) == mask.bytes
        assert f"{zlib.adler32(blob):08x}" == mask.adler32
        assert hashlib.sha256(blob).hexdigest() == mask.sha256
        json.loads(blob)
    assert {m.record_id for m in catalogue.lumimasks.values()} == {1001, 1002, 14210, 14220}


def test_unknown_name_suggests_close_matches(catalogue):
    with pytest.raises(UnknownDatasetError) as info:
        get_dataset("Run2016H_SingleMuon")
    assert info.value.suggestions[0] == "Run2016H_SingleMuon_NanoAODv9"
    assert "did you mean 'Run2016H_SingleMuon_NanoAODv9'" in str(info.value)
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownDatasetError, match="did you mean 'agc2015_ttbar_nominal'"):
        catalogue.get("agc2015_ttbar_nomnal")
    with pytest.raises(UnknownDatasetError, match="jetfm opendata list"):
        catalogue.get("zzzzzzzz")


def test_select_filters(catalogue):
    assert {ds.year for ds in catalogue.select(year=2012)} == {2012}
    assert all(ds.is_data for ds in catalogue.select(is_data=True))
    assert {ds.name for ds in catalogue.select(contains="tw")} == {"agc2015_single_top_tW"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["datasets"]["Run2016G_MET_NanoAODv9"].update(golden_json="nope.txt"),
            "'nope.txt' is not in lumimasks",
        ),
        (
            lambda d: d["datasets"]["agc2015_single_top_tW"].update(nfiles=4),
            "3 files listed, nfiles is 4",
        ),
        (
            lambda d: d["datasets"]["agc2015_single_top_tW"].update(nevents=1),
            "events sum to 1999400, nevents is 1",
        ),
        (
            lambda d: d["datasets"]["agc2015_wjets"].update(sources=["S9"]),
            "unknown source tag 'S9'",
        ),
        (
            lambda d: d["datasets"]["agc2015_wjets"].pop("xsec_pb"),
            "'xsec_pb' is a required property",
        ),
        (
            lambda d: d["datasets"]["Run2016G_MET_NanoAODv9"].update(xsec_pb=1.0),
            r"\$.datasets.Run2016G_MET_NanoAODv9: .* should not be valid",
        ),
    ],
)
def test_inconsistent_catalogue_is_rejected(catalogue_document, edit, message):
    doc = copy.deepcopy(catalogue_document)
    edit(doc)
    with pytest.raises(SchemaValidationError, match=message):
        Catalogue.from_document(doc)


def test_catalogue_file_is_shipped_in_opendata_dir():
    assert (opendata_dir() / "catalogue.json").is_file()
    assert len(list((opendata_dir() / "lumimasks").glob("Cert_*.txt"))) == 4
