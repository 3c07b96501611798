"""Resumable pipeline stages: each stage writes a done-marker with its outputs.

Rerunning a pipeline skips every stage whose marker exists and whose recorded inputs
(the stage parameters) are unchanged; a stage that failed or was interrupted has no
marker and runs again from the start (each stage writes its outputs atomically).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["Stage", "StageRecord", "run_stages"]

MARKER = ".done.json"


@dataclass
class StageRecord:
    """What a finished stage left behind."""

    name: str
    outputs: dict[str, Any]
    seconds: float
    skipped: bool = False
    params_hash: str = ""


@dataclass
class Stage:
    """One named step: ``func(stage_dir, **params) -> outputs`` (a JSON-able dict)."""

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
    return StageRecord(stage.name, data["outputs"], data["seconds"], True, data["params_hash"])


def run_stages(
    stages: list[Stage], workdir: Path, console: Console | None = None
) -> dict[str, StageRecord]:
    """Run the stages in order inside ``workdir/<index>-<name>``; skip finished ones."""
    console = console or Console()
    workdir.mkdir(parents=True, exist_ok=True)
    records: dict[str, StageRecord] = {}
    for index, stage in enumerate(stages, start=1):
        stage_dir = workdir / f"{index}-{stage.name}"
        done = _load_done(stage, stage_dir)
        header = f"[bold cyan][{index}/{len(stages)}] {stage.name}[/]"
        if done is not None:
            console.print(f"{header}: already done, skipped ({stage_dir})")
            records[stage.name] = done
            continue
        console.print(f"{header}: {stage.description}")
        stage_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        outputs = stage.func(stage_dir, **stage.params)
        seconds = time.perf_counter() - start
        record = StageRecord(stage.name, outputs, seconds, False, stage.params_hash())
        tmp = _marker(stage_dir).with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"outputs": outputs, "seconds": seconds, "params_hash": record.params_hash},
                indent=2,
                default=str,
            )
        )
        os.replace(tmp, _marker(stage_dir))
        console.print(f"{header}: done in {seconds:.1f} s -> {stage_dir}")
        records[stage.name] = record
    return records
