"""Resumable pipeline stages: each stage writes a done-marker with its outputs.

Rerunning a pipeline skips every stage whose marker exists and whose recorded inputs
(the stage parameters, and the run of the stage before it) are unchanged. Every
completed run of a stage gets a new ``run_id``; a pipeline makes each stage depend on
the ``run_id`` of the one before, so a stage that is redone (its folder deleted, its
parameters changed) redoes everything after it. A stage that was interrupted has no
marker and runs again in the same folder, so stages that can resume (shard building,
pretraining checkpoints, the fine-tuning grid) continue where they stopped; a stage that
finished with other inputs is redone from an empty folder (the old one is moved aside
and removed only when the redo finished; a failed redo puts it back).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from jetfm_coffea.atomic import atomic_write_json

__all__ = ["Stage", "StageRecord", "run_stage"]

MARKER = ".done.json"


@dataclass
class StageRecord:
    """What a finished stage left behind."""

    name: str
    outputs: dict[str, Any]
    seconds: float
    skipped: bool = False
    params_hash: str = ""
    run_id: str = ""  # new for every completed run of the stage

    @property
    def dependency(self) -> str:
        """What a following stage depends on: this run (its parameters for old markers)."""
        return self.run_id or self.params_hash


@dataclass
class Stage:
    """One named step: ``func(stage_dir, **params) -> outputs`` (a JSON-able dict).

    Parameters whose names start with ``_`` only enter the hash (e.g. ``_after``, the
    :attr:`StageRecord.dependency` of the stage this one depends on, so a redone upstream
    stage redoes this one).
    """

    name: str
    func: Callable[..., dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def params_hash(self) -> str:
        text = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _marker(stage_dir: Path) -> Path:
    return stage_dir / MARKER


def _load_done(stage: Stage, stage_dir: Path) -> StageRecord | None:
    path = _marker(stage_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("params_hash") != stage.params_hash():
        return None
    return StageRecord(
        stage.name,
        data["outputs"],
        data["seconds"],
        True,
        data["params_hash"],
        data.get("run_id", ""),
    )


def run_stage(
    stage: Stage, workdir: Path, index: int, total: int, console: Console | None = None
) -> StageRecord:
    """Run one stage in ``workdir/<index>-<name>``, or skip it if it finished before."""
    console = console or Console()
    stage_dir = workdir / f"{index}-{stage.name}"
    header = f"[bold cyan][{index}/{total}] {stage.name}[/]"
    done = _load_done(stage, stage_dir)
    if done is not None:
        console.print(f"{header}: already done, skipped ({stage_dir})")
        return done
    previous = None
    if _marker(stage_dir).exists():  # finished with other inputs: start afresh
        console.print(f"{header}: parameters or an earlier stage changed, redoing the stage")
        previous = stage_dir.with_name(f".{stage_dir.name}.old-{uuid.uuid4().hex[:12]}")
        stage_dir.rename(previous)  # kept until the redone stage finished
    console.print(f"{header}: {stage.description}")
    stage_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    args = {k: v for k, v in stage.params.items() if not k.startswith("_")}
    try:
        outputs = stage.func(stage_dir, **args)
    except BaseException:
        if previous is not None:  # the redo failed: the finished old stage comes back
            shutil.rmtree(stage_dir, ignore_errors=True)
            previous.rename(stage_dir)
        raise
    seconds = time.perf_counter() - start
    record = StageRecord(
        stage.name, outputs, seconds, False, stage.params_hash(), uuid.uuid4().hex[:16]
    )
    document = {
        "outputs": outputs,
        "seconds": seconds,
        "params_hash": record.params_hash,
        "run_id": record.run_id,
    }
    atomic_write_json(_marker(stage_dir), document, indent=2, default=str)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    console.print(f"{header}: done in {seconds:.1f} s -> {stage_dir}")
    return record
