"""Scale presets of the hard-task label-efficiency study (``--scale ci|cpu|cpu-hybrid|gpu``).

A preset fixes everything that sets the size and cost of a study run: events generated
per process, real 2012 events in the pretraining pool, encoder size, pretraining steps
and batch, label grid, seeds, modes, generation workers and the wall-time budget it is
meant to fit.  The task definitions themselves (classes, selections, learning-rate
grids, early stopping) come from the shipped task YAMLs and are the same at every
scale, except for the ``task_overrides`` the ``ci`` preset uses to stay a test.

========= ==================================================================================
preset    meant for
========= ==================================================================================
ci        the test suite: a few hundred events per process, a 1-layer encoder, capped
          training (the runs are marked ‡ in the tables): machinery, not physics
cpu       2 CPU cores (several sessions: the cells resume): ``tiny`` encoder, >= 200k
          pretraining events (generated processes + the real 2012 SingleMu events, test
          events excluded), >= 10k selected test events per task
cpu-hybrid the cpu study's tasks (shared scratch and BDT cells) with the wider pretraining
          library and the pretraining ablation: ``hybrid`` (main), ``supervised``, ``ssl``
gpu       <= 10 minutes on one H100/H200-class GPU with 16 cores, generation included:
          ``small`` encoder, >= 200k distinct pretraining events, >= 10M event-views
========= ==================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jetfm_coffea.errors import ConfigError

__all__ = ["PRESETS", "StudyPreset", "get_preset"]


@dataclass(frozen=True)
class StudyPreset:
    """Sizes and budgets of one scale of the study."""

    name: str
    description: str
    events: dict[str, int]  # process -> generated events (13 TeV)
    real_events: int  # 2012 SingleMu collision events in the pretraining pool
    model: dict[str, Any]  # pretraining ``model`` section (size, overrides)
    pretrain_steps: int
    pretrain_batch: int
    labels: tuple[int | str, ...]
    seeds: tuple[int, ...]
    modes: tuple[str, ...]
    workers: int
    budget_s: float  # the wall time the preset is meant to fit, everything included
    device: str = "auto"
    task_overrides: dict[str, Any] = field(default_factory=dict)
    min_pool_factor: float = 10.0  # pretraining pool >= this x the largest labelled set
    # the cell study (finetune.cellstudy): seeds at <= 3% of the labels, minimum selected
    # test events per task, controls, BDT tuning grids, fair-tuning minimums enforced
    small_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tune_seeds: int = 2
    min_test_events: int = 10_000
    controls: tuple[str, ...] = ("random", "no-signal")
    bdt_leaves: tuple[int, ...] = (7, 15, 31, 63, 127)
    bdt_l2: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0)
    strict: bool = True
    #: encoders pretrained on the pool: name -> mode (``ssl``, ``supervised``, ``hybrid``;
    #: :mod:`jetfm_coffea.train.objective_modes`), the main one (the goals') first
    encoders: dict[str, str] = field(default_factory=lambda: {"ssl": "ssl"})

    @property
    def pretrain_views(self) -> int:
        """Event-views the encoder sees in pretraining (steps x batch)."""
        return self.pretrain_steps * self.pretrain_batch

    @property
    def generated_events(self) -> int:
        return sum(self.events.values())

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (recorded in the study's summary)."""
        return {
            "name": self.name,
            "events": dict(self.events),
            "generated_events": self.generated_events,
            "real_events": self.real_events,
            "model": self.model,
            "pretrain_steps": self.pretrain_steps,
            "pretrain_batch": self.pretrain_batch,
            "pretrain_views": self.pretrain_views,
            "labels": list(self.labels),
            "seeds": list(self.seeds),
            "modes": list(self.modes),
            "workers": self.workers,
            "budget_s": self.budget_s,
            "device": self.device,
            "task_overrides": self.task_overrides,
            "small_seeds": list(self.small_seeds),
            "tune_seeds": self.tune_seeds,
            "min_test_events": self.min_test_events,
            "controls": list(self.controls),
            "bdt_leaves": list(self.bdt_leaves),
            "bdt_l2": list(self.bdt_l2),
            "strict": self.strict,
            "encoders": dict(self.encoders),
        }


_ALL_MODES = ("linear-probe", "finetune", "scratch", "bdt-raw", "bdt-features")
_TASK_PROCESSES = ("ttbar", "tth", "hbb", "vz_bb")
_OTHER_PROCESSES = ("wjets", "zjets", "qcd", "diboson")
#: the wider pretraining library (issue 26): in the pool only, no task uses them
_LIBRARY_PROCESSES = ("st_t", "st_s", "ggh", "vbfh", "gjets", "znunu")
#: the selections keep ~24% of ttbar, ~39% of ttH, ~11% of VZ(bb), ~18% of VH(bb)
#: (headroom check); with 60% of the selected events in the test split: ~13k test events
#: for tth_vs_ttbar, ~12k for vh_vs_vz_bb
_CPU_EVENTS: dict[str, int] = {
    "ttbar": 35_000,
    "tth": 35_000,
    "hbb": 70_000,
    "vz_bb": 70_000,
    **dict.fromkeys(_OTHER_PROCESSES, 35_000),
}
#: what the cpu-scale presets share besides their events
_CPU_RUN: dict[str, Any] = {
    "real_events": 10_000,
    "model": {"size": "tiny"},
    "pretrain_steps": 1_500,
    "pretrain_batch": 256,
    "labels": ("1%", "3%", "10%", "30%", "all"),
    "seeds": (0, 1, 2),
    "modes": _ALL_MODES,
    "workers": 2,
    "budget_s": 30_600.0,  # measured: the plan's `measured` (8.0 h)
    "device": "cpu",
}

PRESETS: dict[str, StudyPreset] = {
    p.name: p
    for p in (
        StudyPreset(
            name="ci",
            description="test-suite scale: machinery only",
            # wjets at the task size too: the regression task wjets_nu_pt studies it
            events={
                **dict.fromkeys(_TASK_PROCESSES, 150),
                **dict.fromkeys(_OTHER_PROCESSES, 25),
                "wjets": 150,
                "hbb": 300,  # its selection keeps ~18% / ~11%: a few labels at 10%
                "vz_bb": 300,
            },
            real_events=600,
            model={
                "size": "custom",
                "overrides": {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8, "proj_dim": 8},
            },
            pretrain_steps=4,
            pretrain_batch=64,
            labels=("10%", "all"),
            seeds=(0,),
            modes=_ALL_MODES,
            workers=1,
            budget_s=180.0,
            device="cpu",
            small_seeds=(0,),
            tune_seeds=1,
            min_test_events=20,
            bdt_leaves=(15,),
            bdt_l2=(0.0,),
            strict=False,
            encoders={"ssl": "ssl", "hybrid": "hybrid"},  # the hybrid machinery, tested
            task_overrides={
                "train.max_steps": 6,
                "train.schedule": "cosine",
                "train.min_eval_interval": 2,
                "train.patience": 2,
                "optim.lr_grid": [3e-3],  # one rate: the grid search is tested on its own
                "reference.learning_rates": [0.2],
                "reference.max_iter": 40,
                "reference.patience": 10,
                "min_val_events": 10,
            },
        ),
        StudyPreset(
            name="cpu",
            description="2 CPU cores, tiny encoder, >= 200k pretraining events, >= 10k "
            "selected test events per task; measured 8.0 h on 2 cores over several "
            "sessions (resumable cells)",
            events=_CPU_EVENTS,
            **_CPU_RUN,
        ),
        StudyPreset(
            name="cpu-hybrid",
            description="the cpu study's tasks and baselines (same events, same test sets: "
            "its scratch and BDT cells are shared) with the wider pretraining library and "
            "the pretraining ablation: hybrid (main), supervised and ssl on one pool",
            events={**_CPU_EVENTS, **dict.fromkeys(_LIBRARY_PROCESSES, 35_000)},
            # budget, an estimate: 3 encoders x the cpu study's measured ssl cells (2.0 h),
            # the wider library's generation (0.4 h) and 3 pretrainings (0.3 h)
            **{**_CPU_RUN, "budget_s": 25_200.0},
            controls=(),  # the random and no-signal controls are the cpu study's
            encoders={"hybrid": "hybrid", "supervised": "supervised", "ssl-wide": "ssl"},
        ),
        StudyPreset(
            name="gpu",
            description="<= 10 minutes on one H100/H200-class GPU with 16 cores, small encoder",
            events={
                "ttbar": 40_000,
                "tth": 40_000,
                "hbb": 70_000,
                "vz_bb": 70_000,
                **dict.fromkeys(_OTHER_PROCESSES, 30_000),
            },
            real_events=10_000,
            model={"size": "small"},
            pretrain_steps=10_000,
            pretrain_batch=1_024,
            labels=("1%", "3%", "10%", "30%", "all"),
            seeds=(0, 1, 2),
            modes=_ALL_MODES,
            workers=16,
            budget_s=600.0,
            device="cuda",
        ),
    )
}
"""The presets by name."""


def get_preset(name: str) -> StudyPreset:
    """The preset called ``name`` or a :class:`ConfigError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown study scale {name!r}; choose from {sorted(PRESETS)}") from None
