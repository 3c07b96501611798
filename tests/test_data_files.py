"""The real CMS files travel with the project: every one is where the READMEs say, with
the SHA-256 they record, and reads without a warning through the project's schema."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import pytest
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from jetfm_coffea._resources import CMS_PACKAGE_FILES, cms_file
from jetfm_coffea.nanoevents import JetFMNanoAODSchema

ROOT = Path(__file__).resolve().parents[1]
READMES = {
    ROOT / "jetfm_coffea" / "_data" / "cms": ROOT / "jetfm_coffea" / "_data" / "cms" / "README.md",
    ROOT / "tests" / "data" / "cms": ROOT / "tests" / "data" / "README.md",
    ROOT / "tests" / "data" / "opendata-reference": ROOT / "tests" / "data" / "README.md",
}
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \|(?P<cells>.*)`(?P<sha>[0-9a-f]{64})` \|$", re.M)


def _recorded() -> list[tuple[Path, int | None, str]]:
    """``(path, events or None, sha256)`` of every table row of the data READMEs."""
    rows = []
    for folder, readme in READMES.items():
        section = readme.read_text()
        if folder.name == "opendata-reference":
            section = section.split("## `opendata-reference/`")[1]
        elif folder.parent.name == "data" and folder.parent.parent.name == "tests":
            section = section.split("## `opendata-reference/`")[0]
        for m in ROW.finditer(section):
            events = m["cells"].split("|")[0].strip()
            rows.append((folder / m["name"], int(events) if events.isdigit() else None, m["sha"]))
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_recorded_file_is_there_with_its_sha256():
    rows = _recorded()
    assert len(rows) == 7  # 2 package files, 3 test files, 2 reference files
    for path, _, sha in rows:
        assert path.is_file(), f"{path} is recorded in a data README but missing"
        assert _sha256(path) == sha, f"{path}: SHA-256 differs from its README"


def test_event_counts_match_the_readmes():
    for path, events, _ in _recorded():
        if path.suffix == ".root":
            with uproot.open(path) as f:
                assert f["Events"].num_entries == events, path


def test_no_unrecorded_data_file_is_shipped():
    recorded = {path for path, _, _ in _recorded()}
    shipped = {p for folder in READMES for p in folder.iterdir() if p.name != "README.md"}
    assert shipped == recorded


def test_package_files_resolve_without_the_environment_variable(monkeypatch):
    monkeypatch.delenv("JETFM_TESTDATA", raising=False)
    for name in CMS_PACKAGE_FILES:  # the installed package's copy (or the checkout's)
        assert cms_file(name).parent.parts[-3:] == ("jetfm_coffea", "_data", "cms")
    with pytest.raises(FileNotFoundError, match=r"nano_dimuon\.root"):
        cms_file("nano_dimuon.root")  # a test file: found only with its folder given


def test_the_environment_variable_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("JETFM_TESTDATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="unset JETFM_TESTDATA"):
        cms_file(CMS_PACKAGE_FILES[0])
    (tmp_path / "cms").mkdir()
    (tmp_path / "cms" / CMS_PACKAGE_FILES[0]).write_bytes(b"")
    assert cms_file(CMS_PACKAGE_FILES[0]) == tmp_path / "cms" / CMS_PACKAGE_FILES[0]


@pytest.mark.parametrize("fixture", ["singlemu", "nano_dimuon", "ttbar2015", "ttbar_v5"])
def test_real_files_read_quietly_through_the_project_schema(fixture, request):
    path = str(request.getfixturevalue(fixture))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NanoEventsFactory.from_root({path: "Events"}, schemaclass=NanoAODSchema, mode="virtual")
    assert caught, "coffea's own schema warns on this file: nothing to silence"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = NanoEventsFactory.from_root(
            {path: "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual"
        ).events()
        assert len(events.Photon.mass) == len(events)  # still coffea's photons
    assert [str(w.message) for w in caught] == []


def test_other_warnings_still_show(make_nanoaod):
    """The schema silences only its listed messages: coffea's missing-event-id warning
    (demoted from an error here) still reaches the user."""
    path = make_nanoaod({"Muon": {"pt": [[30.0]], "eta": [[0.1]], "phi": [[0.2]],
                                  "mass": [[0.1]], "charge": [[1.0]]}}, 1)  # fmt: skip

    class NoIds(JetFMNanoAODSchema):
        event_ids = ("run", "luminosityBlock", "event", "bunchCrossing")
        error_missing_event_ids = False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NoIds, mode="virtual")
    assert any("Missing event_ids" in str(w.message) for w in caught)
