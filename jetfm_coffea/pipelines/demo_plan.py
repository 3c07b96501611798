"""The demo's declarative plan: which samples, how many events, which model, which grid."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DemoPlan", "Sample"]


class Sample(BaseModel):
    """One generated sample of the demo."""

    model_config = ConfigDict(extra="forbid")

    process: str
    fraction: float = Field(1.0, gt=0, description="share of --events for this sample")
    finetune: bool = Field(False, description="a class of the fine-tuning task")


class DemoPlan(BaseModel):
    """Everything ``jetfm demo`` does, in one place (scaled by ``events``)."""

    model_config = ConfigDict(extra="forbid")

    events: int = Field(3000, ge=200, description="events per labelled sample")
    sqrts: int = 13000
    seed: int = 2026
    workers: int = 2
    samples: list[Sample] = Field(
        default_factory=lambda: [
            Sample(process="ttbar", finetune=True),
            Sample(process="wjets", finetune=True),
            Sample(process="zjets", fraction=0.5),
            Sample(process="qcd", fraction=0.5),
        ]
    )
    include_real_data: bool = Field(
        True, description="add the real 2012 SingleMu events to the unlabelled pretraining mix"
    )
    views: Literal["fresh", "stored"] = Field(
        "fresh",
        description="pretraining views: fresh physics views every step (shards without "
        "views), or the 2 views stored in the shards at build time",
    )
    pretrain_steps: int = Field(400, ge=1)
    batch_size: int = 128
    label_grid: list[int] = Field(default_factory=lambda: [100, 300])
    pretrain_size: str = "tiny"
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    finetune_max_steps: int = Field(150, ge=5, description="optimiser steps per fine-tuning run")
    augment_check_events: int = Field(100_000, ge=100, description="real dimuon events checked")

    def n_events(self, sample: Sample) -> int:
        return max(200, int(self.events * sample.fraction))
