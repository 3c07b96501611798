"""The pretraining data sheet in run.json and the model card, carried into fine-tuned
models, and the score-time blinding check."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune import load_labelled
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.finetune.trainer import finetune, prepare_finetune
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.model.rundir import read_data_sheet
from jetfm_coffea.selection.blinding import load_blinding
from jetfm_coffea.selection.datasheet import (
    UnblindedModelError,
    UnblindedModelWarning,
    check_model_blinding,
    data_sheet,
)
from jetfm_coffea.shards.store import open_store
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import pretrain
from jetfm_coffea.train.data import events_source, shards_source

from .conftest import GOLDEN_2012, Z_MUMU, independent_keep


def _sheets(model):
    return {str(model): read_data_sheet(model)}


TINY = {
    "model": {
        "size": "custom",
        "overrides": {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8, "proj_dim": 8},
    },
    "objective": {"contrastive": "none", "masked_weight": 1.0},
    "train": {"steps": 2, "progress": False, "log_every": 1},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, singlemu):
    fileset = {
        "smu": {
            "files": {str(singlemu): "Events"},
            "metadata": {"is_data": True, "golden_json": GOLDEN_2012, "record_ids": [6021]},
        }
    }
    blinding = load_blinding({"regions": [{"name": "z", "all": [Z_MUMU]}]}, TokenConfig())
    out = tmp_path_factory.mktemp("sheet") / "store"
    build_store(
        fileset, out, execution=Execution(executor="iterative", chunksize=5000), blinding=blinding
    )
    return out


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, store):
    out = tmp_path_factory.mktemp("sheet") / "pre"
    pretrain(TINY, shards_source(store, batch_size=32, seed=0), out, keep_model=False)
    return out


def test_pretraining_run_records_the_data_sheet(store, pretrained):
    st = open_store(store)
    sheet = read_data_sheet(pretrained)
    assert sheet == json.loads(json.dumps(data_sheet(st.manifest, st.description)))
    smu = sheet["datasets"]["smu"]
    assert smu["record_ids"] == [6021] and smu["events"] == st.n_events
    assert smu["certified"]["events_kept"] == 10_000  # the 2012 runs are fully certified
    assert sheet["golden_json"] == {
        GOLDEN_2012: "04edd6088eddc56cdaf3de335af636f988ec1e177512dd60312dcf55453719cc"
    }
    card = (pretrained / "MODEL_CARD.md").read_text()
    assert "## Pretraining data sheet" in card
    assert f"golden JSON `{GOLDEN_2012}`" in card
    assert "blinded regions (collision data" in card and ": z" in card
    assert f"store checksum `{sheet['store_checksum'][:16]}`" in card


def test_fine_tuned_models_carry_the_sheet_forward(tmp_path, pretrained, singlemu, ttbar_v5):
    fileset = tmp_path / "labelled.json"
    fileset.write_text(
        json.dumps(
            {
                "data": {"files": {str(singlemu): "Events"}, "metadata": {"label": 0}},
                "tt": {"files": [str(ttbar_v5)], "metadata": {"label": 1}},
            }
        )
    )
    labelled = load_labelled(
        fileset=fileset,
        token_config=TokenConfig(),
        max_events_per_dataset=100,
    )
    task = {
        "classes": {"data": 0, "tt": 1},
        "labels": ["all"],
        "seeds": [0],
        "train": {"batch_size": 32, "max_epochs": 1, "min_steps": 0, "max_steps": 2},
        "optim": {"lr": 3e-3, "warmup_steps": 0},
    }
    setup = prepare_finetune(task, pretrained, labelled)
    res = finetune(setup, tmp_path / "ft", mode="linear-probe", labels="all", seed=0)
    assert read_data_sheet(res.run_dir) == read_data_sheet(pretrained)
    assert (
        "## Pretraining data sheet (of the encoder)" in (res.run_dir / "MODEL_CARD.md").read_text()
    )
    scratch = finetune(setup, tmp_path / "scratch", mode="scratch", labels="all", seed=0)
    assert read_data_sheet(scratch.run_dir) is None


def test_score_check_knows_which_regions_were_blinded(pretrained, tmp_path):
    same = load_blinding({"regions": [{"name": "my_z", "all": [Z_MUMU]}]})  # same definition
    assert check_model_blinding(_sheets(pretrained), same) == []
    other = load_blinding(
        {
            "regions": [
                {"name": "h_mumu", "all": [{**Z_MUMU, "min": 120, "max": 130}]},
                same.regions[0],
            ]
        }
    )
    with pytest.warns(
        UnblindedModelWarning, match=r"still contained the analysis region\(s\) h_mumu:"
    ):
        check_model_blinding(_sheets(pretrained), other)
    with pytest.raises(UnblindedModelError, match="h_mumu"):
        check_model_blinding(_sheets(pretrained), other, require=True)
    bare = make_classifier_run(tmp_path / "bare")
    with pytest.warns(UnblindedModelWarning, match="has no pretraining data sheet"):
        check_model_blinding(_sheets(bare), same)


def test_score_require_blinded_stops_before_scoring_collision_data(tmp_path, singlemu):
    model = make_classifier_run(tmp_path / "model")
    region = tmp_path / "sr.yaml"
    region.write_text("regions:\n  - name: sr\n    all: [{objects: [Muon], min_count: 2}]\n")
    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps({"d": {"files": {str(singlemu): "Events"}, "metadata": {"is_data": True}}})
    )
    args = ["score", str(fileset), "--model", str(model), "--out", str(tmp_path / "o")]
    args += ["--analysis-region", str(region), "--require-blinded", "--lumi-mask", GOLDEN_2012]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert (
        "UnblindedModelError" in result.output and "has no pretraining data sheet" in result.output
    )
    assert not (tmp_path / "o").exists()
    missing = CliRunner().invoke(main, args[:-5])  # collision data, no mask
    assert missing.exit_code == 1 and "--lumi-mask FILE" in missing.output


def test_exported_models_carry_the_sheet(tmp_path, pretrained):
    from jetfm_coffea.score.export import export_model, read_manifest

    # a classifier run whose run.json has the pretraining sheet (as a fine-tuned run has)
    run = make_classifier_run(tmp_path / "clf", token_config=TokenConfig())
    info = json.loads((run / "run.json").read_text())
    info["data_sheet"] = read_data_sheet(pretrained)
    (run / "run.json").write_text(json.dumps(info))
    out = export_model(run, tmp_path / "export", formats=())
    assert read_data_sheet(out) == read_data_sheet(pretrained)
    assert read_manifest(out)["files"]["data_sheet.json"]["role"] == "data_sheet"
    assert (
        check_model_blinding(
            _sheets(out), load_blinding({"regions": [{"name": "z", "all": [Z_MUMU]}]})
        )
        == []
    )


def test_events_pretraining_records_the_data_sheet(tmp_path, singlemu, partial_golden, ids):
    """Pretraining straight from NanoAOD (``--events``): the sheet from the files read."""
    fileset = tmp_path / "fs.json"
    meta = {"is_data": True, "golden_json": str(partial_golden), "record_ids": [6021]}
    fileset.write_text(json.dumps({"smu": {"files": {str(singlemu): "Events"}, "metadata": meta}}))
    source = events_source(fileset)
    out = tmp_path / "pre"
    pretrain(TINY, source, out, keep_model=False)
    sheet = read_data_sheet(out)
    keep = independent_keep(partial_golden, ids)
    smu = sheet["datasets"]["smu"]
    assert smu["kind"] == "data" and smu["record_ids"] == [6021]
    assert smu["events"] == source.n_events == int(keep.sum())
    assert smu["events_read"] == 10_000
    assert smu["certified"]["events_dropped"] == int((~keep).sum())
    assert sheet["store_checksum"] is None and sheet["n_shards"] == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "read straight from NanoAOD" in card and "lumi sections in 1 runs (194711)" in card
