"""Resumable stages: skip what finished, redo a stage and everything after it."""

from __future__ import annotations

import json
import shutil

import pytest
from rich.console import Console

from jetfm_coffea.pipelines.demo import stage_shards
from jetfm_coffea.pipelines.demo_plan import DemoPlan
from jetfm_coffea.pipelines.stages import Stage, run_stage


def _pipeline(workdir, calls, value=1):
    """Three chained stages, each depending on the run of the one before (as run_demo)."""

    def make(name):
        def func(stage_dir, value):
            calls.append(name)
            (stage_dir / "out.txt").write_text(str(value))
            return {"value": value}

        return func

    records, console = [], Console(quiet=True)
    for i, name in enumerate(("a", "b", "c"), start=1):
        params = {"value": value}
        if records:
            params["_after"] = records[-1].dependency
        records.append(run_stage(Stage(name, make(name), params), workdir, i, 3, console))
    return records


def test_rerun_skips_and_a_redone_stage_redoes_what_follows(tmp_path):
    calls = []
    first = _pipeline(tmp_path, calls)
    assert calls == ["a", "b", "c"] and not any(r.skipped for r in first)
    assert len({r.run_id for r in first}) == 3

    calls.clear()
    again = _pipeline(tmp_path, calls)
    assert calls == [] and all(r.skipped for r in again)
    assert [r.run_id for r in again] == [r.run_id for r in first]

    shutil.rmtree(tmp_path / "2-b")  # the user deletes one stage: it and 'c' run again
    calls.clear()
    redone = _pipeline(tmp_path, calls)
    assert calls == ["b", "c"]
    assert redone[0].skipped and redone[1].run_id != first[1].run_id

    calls.clear()
    _pipeline(tmp_path, calls, value=2)  # changed parameters: everything
    assert calls == ["a", "b", "c"]


def test_shards_stage_reports_skipped_files(tmp_path, ttbar2015):
    """A file the build skips reaches the stage outputs (and so the report) with its reason."""
    missing = tmp_path / "gone.root"
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": {"files": {str(ttbar2015): "Events",
                                                       str(missing): "Events"}}}))  # fmt: skip
    plan = DemoPlan(workers=1).model_dump(mode="json", include={"seed", "workers"})
    out = stage_shards(tmp_path / "stage", str(fileset), plan, scheduler=None)
    assert out["events_written"] == 200
    assert [f for f, _ in out["skipped"]] == [str(missing)]


def test_a_failed_redo_puts_the_finished_stage_back(tmp_path):
    """Redoing a stage moves its old folder aside and removes it only after the redo."""
    _pipeline(tmp_path, [])
    old = {p.name: p.read_bytes() for p in (tmp_path / "1-a").iterdir()}

    def fails(stage_dir, value):
        (stage_dir / "partial.txt").write_text("half")
        raise OSError(28, "No space left on device")

    stage = Stage("a", fails, {"value": 2})
    with pytest.raises(OSError, match="No space left"):
        run_stage(stage, tmp_path, 1, 3, Console(quiet=True))
    assert {p.name: p.read_bytes() for p in (tmp_path / "1-a").iterdir()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-a", "2-b", "3-c"]
    calls = []
    _pipeline(tmp_path, calls, value=2)  # the redo that succeeds leaves no old folder
    assert calls == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-a", "2-b", "3-c"]
    assert (tmp_path / "1-a" / "out.txt").read_text() == "2"
