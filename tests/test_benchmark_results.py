"""The docs' generated blocks and the results files they are written from agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_all  # noqa: E402


def test_committed_page_block_equals_committed_results():
    block = run_all.page_block(ROOT / "docs" / "benchmarks.md")
    results = (ROOT / "benchmarks" / "results" / "RESULTS.md").read_text().strip()
    assert block == results, "docs/benchmarks.md's block and RESULTS.md disagree: rerun run_all"
    assert "Load average" in block and "### " in block  # sections, with the load recorded


def test_run_all_quick_writes_both_from_one_run(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# doc\n\ntext\n\n{run_all.BEGIN}\nold numbers\n{run_all.END}\n\nmore\n")
    out = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only",
           "matmul", "--out", str(out), "--page", str(page)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = (out / "RESULTS.md").read_text()
    assert run_all.page_block(page) == results.strip()
    assert "old numbers" not in page.read_text() and page.read_text().endswith("more\n")
    assert "--quick" in results and "only matmul" in results and "load " in results
    assert "| square |" in results and (out / "matmul.json").is_file()


def test_replace_block_needs_the_markers(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# no block\n")
    with pytest.raises(SystemExit, match="no generated block"):
        run_all.replace_block(page, "x")


def test_committed_demo_block_is_rendered_from_the_committed_demo_results():
    import demo_results

    results = json.loads(demo_results.RESULTS.read_text())
    page = ROOT / "docs" / "label-efficiency.md"
    assert demo_results.page_block(page) == demo_results.render(results).strip()
    # what the page states: the task's held-out events were left out of pretraining
    fresh = results["runs"]["fresh"]
    assert fresh["held_out_events"] == fresh["splits"]["val"] + fresh["splits"]["test"]
    # and a second run from scratch reproduced it (issue 28: the demo's numbers reproduce)
    assert results["repeat"]["identical"], results["repeat"]


def test_demo_repeat_comparison_finds_a_changed_auc():
    import copy

    import demo_results

    run = json.loads(demo_results.RESULTS.read_text())["runs"]["fresh"]
    assert demo_results.compare_runs(run, copy.deepcopy(run))["identical"]
    moved = copy.deepcopy(run)
    moved["aggregate"][1]["auc_mean"] += 0.0036
    result = demo_results.compare_runs(run, moved)
    assert not result["identical"]
    assert abs(result["max_abs_auc_difference"] - 0.0036) < 1e-12
    resplit = copy.deepcopy(run)
    resplit["splits"]["test"] += 1
    assert not demo_results.compare_runs(run, resplit)["identical"]
