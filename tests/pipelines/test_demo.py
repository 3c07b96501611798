"""A miniature of the main job: every stage runs for real on a few hundred events."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from jetfm_coffea.finetune import load_labelled, plan_task
from jetfm_coffea.finetune.heldout import read_pool_events
from jetfm_coffea.model.rundir import POOL_EVENTS
from jetfm_coffea.pipelines import DemoPlan, run_demo
from jetfm_coffea.pipelines.demo import demo_task
from tests.metric_checks import run_auc

MINI = DemoPlan(
    events=200,
    pretrain_steps=4,
    batch_size=32,
    label_grid=[40],
    seeds=[0],
    finetune_max_steps=6,
    augment_check_events=5_000,
)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    run_demo(workdir, MINI, console=Console(record=True))
    return workdir


def test_report_has_real_numbers(demo_dir):
    report = (demo_dir / "REPORT.md").read_text()
    assert "## Label efficiency" in report and "| finetune |" in report
    assert "spectrum unchanged: True" in report
    results = json.loads((demo_dir / "4-finetune" / "results.json").read_text())
    modes = {row["mode"] for row in results["rows"]}
    assert modes == {"linear-probe", "finetune", "scratch"}
    sig = demo_task(MINI).signal_index  # each AUC is that of the run's stored test scores
    for row in results["rows"]:
        assert row["auc"] == pytest.approx(run_auc(row["run_dir"], sig), abs=1e-6), row["mode"]
    # the report says what the numbers measure and what pretraining saw
    n = results["splits"]
    assert f"{n['train']} training, {n['val']} validation and {n['test']} test events" in report
    assert "minus the" in report and "validation and test events of the fine-tuning task" in report
    score = json.loads((demo_dir / "5-score" / "summary.json").read_text())
    assert score["events"] == 400  # both labelled samples, every event scored


def test_every_stage_left_its_outputs(demo_dir):
    for stage in ("1-generate", "2-shards", "3-pretrain", "4-finetune", "5-score"):
        assert (demo_dir / stage / ".done.json").is_file(), stage
    assert (demo_dir / "2-shards" / "store" / "manifest.json").is_file()
    assert (demo_dir / "3-pretrain" / "run" / "model.safetensors").is_file()


def test_rerun_skips_finished_stages(demo_dir):
    console = Console(record=True, width=200)
    run_demo(demo_dir, MINI, console=console)
    text = console.export_text()
    assert text.count("already done, skipped") == 6


def test_pretraining_never_saw_the_test_or_validation_events(demo_dir):
    """By event id: the pool the encoder was pretrained on against the task's test split."""
    store = demo_dir / "2-shards" / "store"
    data = load_labelled(shards=store)
    setup = plan_task(demo_task(MINI), data)
    columns = (data.dataset_names(), data.run, data.luminosityBlock, data.event)
    ids = list(zip(*(c.tolist() for c in columns), strict=True))
    test = {ids[i] for i in setup.pool("test")}
    val = {ids[i] for i in setup.pool("val")}
    train = {ids[i] for i in setup.pool("train")}
    pool = read_pool_events(demo_dir / "3-pretrain" / "run" / POOL_EVENTS)
    assert len(test) > 20 and len(val) > 20
    assert not pool & test and not pool & val
    # everything else stays: the training events of the task and every other sample
    assert train <= pool and len(pool) == len(data) - len(test) - len(val)
    pre = json.loads((demo_dir / "3-pretrain" / ".done.json").read_text())["outputs"]
    assert pre["pool_events"] == len(pool) and pre["held_out_events"] == len(test | val)
