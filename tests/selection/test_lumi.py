"""Certified luminosity in the processors, on real 2012 SingleMu data, in every mode."""

from __future__ import annotations

import json
import re

import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.opendata import GoldenJSONError, load_lumimask, read_golden_json
from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor, finalize_analysis
from jetfm_coffea.processors.tokenize import TokenizeProcessor, finalize_output
from jetfm_coffea.selection.lumi import (
    LumiMaskWarning,
    LumiPolicy,
    MissingLumiMaskError,
    lumi_summary,
    merge_lumi_ranges,
    resolve_lumi_masks,
)

from .conftest import GOLDEN_2012, GOLDEN_2016, independent_keep

CHUNK = 3_000


def data_fileset(path, **meta):
    return {"smu": {"files": {str(path): "Events"}, "metadata": {"is_data": True, **meta}}}


def tokenize(fileset, mode):
    proc = TokenizeProcessor(return_tokens=True)
    if mode == "dask-mode":
        raw, _ = run_coffea(proc, fileset, Execution(dask_mode=True, workers=1, chunksize=CHUNK))
        return finalize_output(raw, proc.token_config)
    out, _ = run_coffea(
        proc, fileset, Execution(executor="iterative", chunksize=CHUNK), status=False
    )
    return out


@pytest.mark.parametrize("mode", ["virtual", "dask-mode"])
@pytest.mark.parametrize("golden", ["2012", "partial"])
def test_tokenize_keeps_exactly_the_certified_events(singlemu, ids, partial_golden, golden, mode):
    mask = GOLDEN_2012 if golden == "2012" else partial_golden
    keep = independent_keep(mask, ids)
    fileset = resolve_lumi_masks(data_fileset(singlemu, golden_json=str(mask)))
    out = tokenize(fileset, mode)["smu"]
    flow = out["cutflow"]
    assert flow["events"] == 10_000
    assert flow["certified_lumi"] == keep.sum()
    assert sorted(out["tokens"].event) == sorted(ids["event"][keep])


@pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning")  # re-emitted by
@pytest.mark.filterwarnings("ignore:Branch .* already exists:RuntimeWarning")  # pytest.warns
def test_wrong_era_mask_warns_that_every_event_was_removed(singlemu):
    fileset = resolve_lumi_masks(data_fileset(singlemu), lumi_mask=GOLDEN_2016)
    with pytest.warns(LumiMaskWarning, match="removed every one of its 10000 events"):
        out = tokenize(fileset, "virtual")
    assert out["smu"]["cutflow"]["certified_lumi"] == 0


def test_simulation_is_untouched_even_with_a_mask(ttbar2015):
    fileset = {"tt": {"files": {str(ttbar2015): "Events"}, "metadata": {"is_mc": True}}}
    fileset = resolve_lumi_masks(fileset, lumi_mask=GOLDEN_2012)
    assert "golden_json" not in fileset["tt"]["metadata"]
    flow = tokenize(fileset, "virtual")["tt"]["cutflow"]
    assert flow["events"] == 200 and "certified_lumi" not in flow


@pytest.mark.parametrize("mode", ["virtual", "dask-mode"])
def test_analysis_processor_masks_collision_data(singlemu, ids, partial_golden, mode):
    fileset = resolve_lumi_masks(data_fileset(singlemu), lumi_mask=partial_golden)
    proc = ScoreAnalysisProcessor()
    if mode == "dask-mode":
        raw, _ = run_coffea(proc, fileset, Execution(dask_mode=True, workers=1, chunksize=CHUNK))
        out = finalize_analysis(raw, proc)
    else:
        out, _ = run_coffea(
            proc, fileset, Execution(executor="iterative", chunksize=CHUNK), status=False
        )
    flow = out["smu"]["cutflow"]
    keep = independent_keep(partial_golden, ids)
    assert flow["events"] == 10_000 and flow["certified_lumi"] == keep.sum()
    assert out["smu"]["jet_pt"][{"stage": "all"}].sum().value <= keep.sum()


def test_collision_data_without_a_mask_is_refused(singlemu):
    with pytest.raises(MissingLumiMaskError) as err:
        resolve_lumi_masks(data_fileset(singlemu))
    message = str(err.value)
    assert "'smu'" in message and "--lumi-mask FILE" in message and "golden_json" in message
    with pytest.raises(MissingLumiMaskError, match="'smu'"):  # processors check it too
        run_coffea(
            TokenizeProcessor(),
            data_fileset(singlemu),
            Execution(executor="iterative"),
            status=False,
        )


def test_no_lumi_mask_is_explicit_and_recorded(singlemu):
    fileset = resolve_lumi_masks(data_fileset(singlemu, golden_json=GOLDEN_2012), no_lumi_mask=True)
    meta = fileset["smu"]["metadata"]
    assert meta["lumi_mask_disabled"] is True and "golden_json" not in meta
    policy = LumiPolicy.from_metadata({**meta, "dataset": "smu"})
    assert not policy.masked and policy.provenance()["disabled"] is True
    flow = tokenize(fileset, "virtual")["smu"]["cutflow"]
    assert flow["events"] == 10_000 and "certified_lumi" not in flow
    with pytest.raises(ConfigError, match="exclude each other"):
        resolve_lumi_masks(data_fileset(singlemu), lumi_mask=GOLDEN_2012, no_lumi_mask=True)


def test_undeclared_datasets_take_a_given_mask(singlemu, partial_golden, ids):
    fileset = resolve_lumi_masks({"f": {"files": {str(singlemu): "Events"}}}, partial_golden)
    flow = tokenize(fileset, "virtual")["f"]["cutflow"]
    assert flow["certified_lumi"] == independent_keep(partial_golden, ids).sum()


def test_lumi_summary_counts_sections_kept_and_dropped(ids, partial_golden):
    keep = independent_keep(partial_golden, ids)
    summary = lumi_summary(ids["run"], ids["luminosityBlock"], keep)
    assert summary["events_kept"] == keep.sum()
    assert summary["events_dropped"] == (~keep).sum()
    pairs = set(zip(ids["run"][keep], ids["luminosityBlock"][keep], strict=True))
    assert summary["lumisections_kept"] == len(pairs)
    dropped = set(zip(ids["run"][~keep], ids["luminosityBlock"][~keep], strict=True))
    assert summary["lumisections_dropped"] == len(dropped)
    golden = json.loads(partial_golden.read_text())
    for run, spans in summary["lumisections"].items():
        for a, b in spans:  # every kept section lies inside a certified range
            assert any(lo <= a and b <= hi for lo, hi in golden[run])
    assert merge_lumi_ranges(summary["lumisections"], {"1": [[3, 4]]}) == {
        **summary["lumisections"],
        "1": [[3, 4]],
    }
    assert merge_lumi_ranges({"5": [[1, 2]]}, {"5": [[3, 7], [9, 9]]}) == {"5": [[1, 7], [9, 9]]}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('{"194711": [[1, 10]],\n "195916": [[1, 2]\n}', 3, "not valid JSON"),
        ('{"194711": [[1, 10]],\n "195916": [[5, 3]]}', 2, "run 195916: malformed"),
        ('{\n"194711": [[1]]}', 2, "run 194711: malformed"),
        ('{\n\n"run1": [[1, 2]]}', 3, "'run1' is not a run number"),
        ('{"194711": [[0, 2]]}', 1, "malformed"),
        ("[[1, 2]]", 1, "expected an object"),
    ],
)
def test_bad_golden_json_names_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(GoldenJSONError, match=re.escape(f"{path}, line {line}")) as err:
        read_golden_json(path)
    assert reason in str(err.value)
    with pytest.raises(GoldenJSONError):  # the coffea mask is never built from it
        load_lumimask(path)
    fileset = {"d": {"files": {"x.root": "Events"}, "metadata": {"is_data": True}}}
    with pytest.raises(GoldenJSONError, match=re.escape(str(path))):  # before any work
        resolve_lumi_masks(fileset, lumi_mask=path)


def test_tokens_read_straight_from_nanoaod_are_masked_too(tmp_path, singlemu, ids, partial_golden):
    from jetfm_coffea.train.data import events_source

    fileset = tmp_path / "fs.json"
    fileset.write_text(json.dumps(data_fileset(singlemu, golden_json=str(partial_golden))))
    keep = independent_keep(partial_golden, ids)
    source = events_source(fileset)
    assert sorted(source.arrays["event"].tolist()) == sorted(ids["event"][keep].tolist())
    assert source.provenance["golden_json"] == [str(partial_golden)]
    fileset.write_text(json.dumps(data_fileset(singlemu)))
    with pytest.raises(MissingLumiMaskError, match="'smu'"):
        events_source(fileset)
    assert len(events_source(fileset, no_lumi_mask=True, max_events=50).arrays["event"]) == 50
    assert len(events_source(singlemu, lumi_mask=partial_golden).arrays["event"]) == keep.sum()
