"""A miniature of the main job: every stage runs for real on a few hundred events."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from jetfm_coffea.demo import DemoPlan, run_demo

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
    assert all(0.0 <= row["auc"] <= 1.0 for row in results["rows"])
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
