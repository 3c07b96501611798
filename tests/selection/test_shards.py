"""Shards of collision data: certified sections only, no event of a blinded region, in
every execution mode and chunking, with the selection recorded and the data sheet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.selection.blinding import load_blinding
from jetfm_coffea.selection.datasheet import data_sheet, format_data_sheet
from jetfm_coffea.shards.store import open_store, scan_shards
from jetfm_coffea.shards.verification import verify
from jetfm_coffea.tokens import TokenConfig

from .conftest import GOLDEN_2012, Z_MUMU, independent_keep
from .test_blinding import muon_pairs_in_window

CONFIG = TokenConfig()
BLIND = {
    "regions": [
        {
            "name": "z_mumu",
            "all": [Z_MUMU],
        },
        {"name": "hard_muon", "all": [{"objects": ["Muon"], "min_pt": 60}]},
    ]
}
BUILDS = {  # name: (mode, executor, chunksize)
    "virtual-2500": ("virtual", "iterative", 2500),
    "virtual-4000": ("virtual", "futures", 4000),
    "dask-3000": ("dask", "iterative", 3000),
}


@pytest.fixture(scope="module")
def expected(singlemu, ids, partial_golden):
    """Independently: certified by coffea's LumiMask, outside both regions (evaluated on
    the collections as read, the default)."""
    events = NanoEventsFactory.from_root(
        {str(singlemu): "Events"}, mode="eager", schemaclass=JetFMNanoAODSchema
    ).events()
    z = muon_pairs_in_window(events, 80, 100, as_read=True)  # every muon as read
    hard = np.asarray(np.any(events.Muon.pt > 60, axis=1))
    certified = independent_keep(partial_golden, ids)
    return {
        "certified": certified,
        "z": z & certified,
        "hard": hard & certified,
        "kept": ids["event"][certified & ~z & ~hard],
        "blinded": ids["event"][certified & (z | hard)],
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory, singlemu, partial_golden):
    root = tmp_path_factory.mktemp("blinded")
    fileset = {
        "smu": {
            "files": {str(singlemu): "Events"},
            "metadata": {"is_data": True, "golden_json": str(partial_golden), "record_ids": [6]},
        }
    }
    out = {}
    for name, (mode, executor, chunksize) in BUILDS.items():
        out[name] = build_store(
            fileset,
            root / name,
            execution=Execution(
                executor=executor,
                dask_mode=mode == "dask",
                workers=1 if mode == "dask" else 2,
                chunksize=chunksize,
            ),
            token_config=CONFIG,
            augmentation={"views": 1, "seed": 3, "steps": [{"name": "rotate_phi"}]},
            blinding=load_blinding(BLIND, CONFIG),
        )
    return out


def store_events(path) -> np.ndarray:
    return np.concatenate([shard.read("event") for shard in open_store(path)])


@pytest.mark.parametrize("name", list(BUILDS))
def test_blinded_events_never_reach_a_shard(stores, expected, name):
    assert len(expected["blinded"]) > 100
    events = store_events(stores[name].store)
    assert not set(events) & set(expected["blinded"])
    np.testing.assert_array_equal(np.sort(events), np.sort(expected["kept"]))


@pytest.mark.parametrize("name", list(BUILDS))
def test_selection_recorded_per_shard_and_in_the_manifest(stores, expected, name):
    summary = stores[name]
    sel = summary.selection["smu"]
    assert sel["kind"] == "data" and sel["record_ids"] == [6]
    assert sel["events_read"] == 10_000
    assert sel["certified"]["events_kept"] == expected["certified"].sum()
    assert sel["blinding"]["regions"] == {
        "z_mumu": int(expected["z"].sum()),
        "hard_muon": int(expected["hard"].sum()),
    }
    assert sel["events"] == len(expected["kept"])
    store = open_store(summary.store)
    for shard, record in zip(store, store.records, strict=True):
        attrs = shard.attrs["selection"]
        assert attrs == record.selection
        assert attrs["lumi_mask"]["golden_json"] == "partial.json"
        src = shard.attrs["source"]
        assert shard.n_events == src["entry_stop"] - src["entry_start"] - attrs["events_removed"]
    assert verify(summary.store).ok


def test_data_sheet_is_the_same_for_every_build(stores, expected, ids, partial_golden):
    sheets = {}
    for name, summary in stores.items():
        store = open_store(summary.store)
        sheets[name] = data_sheet(store.manifest, store.description)
    ref = sheets["virtual-2500"]
    for name, sheet in sheets.items():
        assert sheet["datasets"] == ref["datasets"], name
    smu = ref["datasets"]["smu"]
    keep = expected["certified"]
    assert smu["certified"]["runs"] == sorted(set(ids["run"][keep].tolist()))
    pairs = set(zip(ids["run"][keep], ids["luminosityBlock"][keep], strict=True))
    dropped = set(zip(ids["run"][~keep], ids["luminosityBlock"][~keep], strict=True))
    assert smu["certified"]["lumisections_kept"] == len(pairs)
    assert smu["certified"]["lumisections_dropped"] == len(dropped)
    golden = json.loads(partial_golden.read_text())
    for run, spans in smu["certified"]["lumisections"].items():
        for a, b in spans:
            assert any(lo <= a and b <= hi for lo, hi in golden[run])
    assert next(iter(ref["blinding"].values()))["regions"][0]["name"] == "z_mumu"
    assert ref["augmentation"]["steps"] == ["rotate_phi"]
    text = "\n".join(format_data_sheet(ref))
    assert "dataset `smu` (records 6): data" in text
    assert "golden JSON `partial.json` sha256" in text
    assert "blinded regions (collision data" in text and "z_mumu, hard_muon" in text


def test_shards_info_prints_the_data_sheet(stores):
    store = stores["virtual-2500"].store
    result = CliRunner().invoke(main, ["shards", "info", store])
    assert result.exit_code == 0, result.output
    assert "data sheet" in result.output and "certified:" in result.output
    doc = json.loads(CliRunner().invoke(main, ["shards", "info", store, "--json"]).output)
    assert doc["data_sheet"]["datasets"]["smu"]["blinding"]["events_removed"] > 0


def test_simulation_is_not_blinded_unless_asked(tmp_path, ttbar2015):
    fileset = {"tt": {"files": {str(ttbar2015): "Events"}, "metadata": {"is_mc": True}}}
    region = {"regions": [{"name": "jets", "all": [{"objects": ["Jet"], "min_count": 4}]}]}
    plain = build_store(
        fileset,
        tmp_path / "a",
        execution=Execution(executor="iterative"),
        blinding=load_blinding(region, CONFIG),
    )
    assert plain.events_written == 200 and plain.selection["tt"]["blinding"] is None
    blinded = build_store(
        fileset,
        tmp_path / "b",
        execution=Execution(executor="iterative"),
        blinding=load_blinding({**region, "apply_to_mc": True}, CONFIG),
    )
    n = blinded.selection["tt"]["blinding"]["regions"]["jets"]
    assert n > 0 and blinded.events_written == 200 - n


def test_resume_refuses_shards_selected_differently(stores, singlemu, partial_golden):
    store = stores["virtual-2500"].store
    meta = {"is_data": True, "golden_json": str(partial_golden), "record_ids": [6]}
    fileset = {"smu": {"files": {str(singlemu): "Events"}, "metadata": meta}}
    kwargs = {
        "token_config": CONFIG,
        "augmentation": {"views": 1, "seed": 3, "steps": [{"name": "rotate_phi"}]},
        "execution": Execution(executor="iterative", chunksize=2500),
    }
    same = build_store(fileset, store, blinding=load_blinding(BLIND, CONFIG), **kwargs)
    assert same.shards_written == 0 and same.shards_existing == 4
    with pytest.raises(ConfigError, match=r"shards/smu/.* another event selection \(blinding_hash"):
        build_store(fileset, store, **kwargs)
    # other chunks (none of them on disk yet): the dataset's selection claim refuses
    other_chunks = {**kwargs, "execution": Execution(executor="iterative", chunksize=5000)}
    with pytest.raises(ConfigError, match=r"dataset 'smu' is built with another event selection"):
        build_store(fileset, store, **other_chunks)
    assert len(scan_shards(store)) == 4
    # a store built before selection claims (no selections/): every shard of it is checked
    shutil.rmtree(Path(store) / "selections")
    with pytest.raises(ConfigError, match=r"shards/smu/.* another event selection \(blinding_hash"):
        build_store(fileset, store, **other_chunks)
    assert not (Path(store) / "selections").exists() and len(scan_shards(store)) == 4
    with pytest.raises(ConfigError, match="lumi_mask_sha256"):
        build_store(
            fileset, store, lumi_mask=GOLDEN_2012, blinding=load_blinding(BLIND, CONFIG), **kwargs
        )
