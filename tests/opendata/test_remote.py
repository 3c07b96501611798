"""Remote reading: retries, timeouts and per-file reports, exercised offline on local files."""

from __future__ import annotations

import sys

import pytest

import jetfm_coffea.opendata.remote as remote
from jetfm_coffea.errors import InputFileError
from jetfm_coffea.opendata import (
    FileReport,
    ReadOptions,
    UnreachableFilesError,
    build_fileset,
    check_file,
    check_fileset,
    ensure_handler,
    load_catalogue,
    open_file,
)

FAST = ReadOptions(timeout=5, retries=2, backoff=0)


@pytest.fixture
def bad_files(tmp_path):
    missing = (tmp_path / "missing.root").as_uri()
    not_root = tmp_path / "not_root.root"
    not_root.write_bytes(b"this is not a ROOT file" * 100)
    return missing, not_root.as_uri()


def test_open_local_path_and_file_url(singlemu):
    for url in (str(singlemu), singlemu.as_uri()):
        with open_file(url, FAST) as root:
            assert root["Events"].num_entries == 10000


def test_check_file_reports_each_kind_of_failure(singlemu, bad_files, tmp_path):
    missing, not_root = bad_files
    ok = check_file(singlemu.as_uri(), FAST)
    assert ok == FileReport(singlemu.as_uri(), True, 1, nevents=10000)
    gone = check_file(missing, FAST)
    assert not gone.ok and gone.attempts == 1  # local errors are not retried
    assert "FileNotFoundError" in gone.error
    junk = check_file(not_root, FAST)
    assert not junk.ok and "not a ROOT file" in junk.error
    no_tree = check_file(singlemu.as_uri(), ReadOptions(treename="Runs", backoff=0))
    assert not no_tree.ok and no_tree.error == "no tree 'Runs'"


def test_network_errors_are_retried_with_backoff(monkeypatch, singlemu):
    calls, sleeps = [], []

    def flaky(url, options):
        calls.append(url)
        if len(calls) < 3:
            raise TimeoutError("server did not answer in time")
        return real(singlemu, options)

    real = remote._open_once
    monkeypatch.setattr(remote, "_open_once", flaky)
    options = ReadOptions(timeout=1, retries=2, backoff=0.5)
    report = check_file("https://example.invalid/a.root", options, sleep=sleeps.append)
    assert report.ok and report.attempts == 3 and report.nevents == 10000
    assert sleeps == [0.5, 1.0]


def test_retries_exhausted_is_an_input_file_error(monkeypatch):
    def down(url, options):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(remote, "_open_once", down)
    sleeps: list[float] = []
    with pytest.raises(InputFileError, match=r"unreachable after 3 attempt\(s\): ConnectionError"):
        open_file(
            "https://example.invalid/a.root", ReadOptions(retries=2, backoff=1), sleep=sleeps.append
        )
    assert sleeps == [1, 2]


def test_read_options_are_validated():
    for bad in ({"timeout": 0}, {"retries": -1}, {"backoff": -1.0}):
        with pytest.raises(ValueError):
            ReadOptions(**bad)


def test_check_fileset_skips_and_reports_each_unreachable_file(
    local_catalogue, bad_files, nano_dimuon
):
    missing, not_root = bad_files
    fs = build_fileset(["local_singlemu_2012", "local_ttbar_2015"], catalogue=local_catalogue)
    fs["local_singlemu_2012"]["files"].update({missing: "Events", nano_dimuon.as_uri(): "Events"})
    fs["local_ttbar_2015"]["files"] = {not_root: "Events"}
    seen: list[FileReport] = []
    good, reports = check_fileset(fs, options=FAST, on_report=seen.append, sleep=lambda s: None)
    assert [r.url for r in reports] == [*fs["local_singlemu_2012"]["files"], not_root]
    assert sorted(r.url for r in seen) == sorted(r.url for r in reports)
    bad = {r.url: r for r in reports if not r.ok}
    assert set(bad) == {missing, not_root}
    assert bad[missing].dataset == "local_singlemu_2012"
    # the rest goes on: reachable files kept with metadata; the emptied dataset dropped
    assert list(good) == ["local_singlemu_2012"]
    assert list(good["local_singlemu_2012"]["files"]) == [
        local_catalogue["local_singlemu_2012"].files[0].url,
        nano_dimuon.as_uri(),
    ]
    assert good["local_singlemu_2012"]["metadata"] == fs["local_singlemu_2012"]["metadata"]


def test_check_fileset_strict_lists_every_failure(singlemu, bad_files):
    missing, not_root = bad_files
    fs = {"d": {"files": {singlemu.as_uri(): "Events", missing: "Events", not_root: "Events"}}}
    with pytest.raises(UnreachableFilesError) as info:
        check_fileset(fs, skip_bad=False, options=FAST)
    assert [f.url for f in info.value.failures] == [missing, not_root]
    assert str(info.value).startswith("2 of 3 file(s) unreachable:")
    assert missing in str(info.value) and not_root in str(info.value)


def test_nothing_reachable_is_an_error_even_when_skipping(bad_files):
    fs = {"a": list(bad_files)}  # plain list-of-files filesets work too
    with pytest.raises(UnreachableFilesError, match="2 of 2 file"):
        check_fileset(fs, options=FAST)


def test_root_protocol_needs_fsspec_xrootd(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec_xrootd", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install 'jetfm-coffea\[xrootd\]'"):
        ensure_handler("root://eospublic.cern.ch//eos/opendata/cms/x.root")
    ensure_handler("file:///tmp/x.root")  # local files need nothing extra


@pytest.mark.network
def test_open_a_real_remote_file():
    """Needs internet (JETFM_NETWORK_TESTS=1): the catalogue's event count is the file's."""
    pytest.importorskip("aiohttp")
    ds = load_catalogue()["agc2015_single_top_tW"]
    first = ds.files[-1]  # a 1,000,000-event file
    report = check_file(first.url, ReadOptions(timeout=60, retries=1))
    assert report.ok, report.error
    assert report.nevents == first.nevents
