"""Downstream task configuration (YAML): type, classes, splits, modes, label grid, optimiser, loop.

Example (a classification; ``type: regression`` with ``options: {target: hadTopPt}`` makes
a regression, see :mod:`jetfm_coffea.finetune.task_types`)::

    type: classification   # the task type (registry: finetune.task_types); default
    classes:            # model class -> the processes (generator names) or data labels in it
      wjets: [wjets]    # = data label 1, the generator's stable label of W+jets
      ttbar: [ttbar]    # = data label 0
    signal: ttbar       # class scored in ROC / background rejection (default: the last one)
    splits: {train: 0.6, val: 0.2, test: 0.2, salt: 0}
    selection:          # every requirement must pass (on the tokens; see finetune.selection)
      - {collections: [Jet], min_count: 2, min_pt: 30, min_btag: 0.2770}
    modes: [linear-probe, finetune, scratch]   # + bdt-raw, bdt-features (reference rows)
    labels: [100, 1000, 10000, all]   # or percentages of the training split: ["1%", "10%"]
    seeds: [0, 1, 2]
    optim: {lr: 1.0e-3, encoder_lr_factor: 0.1}
    train: {batch_size: 128, max_epochs: 100, min_steps: 200, max_steps: 3000, patience: 5}
    class_weighting: balanced

The resolved configuration is written to a fine-tuning run as ``task_config.yaml``
headed by its hash, like the pretraining config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from jetfm_coffea.config_base import HashedConfig, apply_overrides, config_data, validate_config
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.selection import ObjectRequirement
from jetfm_coffea.finetune.task_types import TASK_TYPES

__all__ = [
    "ALL_MODES",
    "MODES",
    "REFERENCE_MODES",
    "FinetuneLoopConfig",
    "FinetuneOptimConfig",
    "LabelCount",
    "Mode",
    "ReferenceConfig",
    "SplitConfig",
    "TaskConfig",
    "check_class_processes",
    "label_fraction",
    "load_task_config",
    "parse_label_count",
    "process_of",
    "resolve_task_path",
    "shipped_tasks",
]

Mode = Literal["linear-probe", "finetune", "scratch", "bdt-raw", "bdt-features"]
#: The three encoder training modes, in the order they are reported.
MODES: tuple[str, ...] = ("linear-probe", "finetune", "scratch")
#: Reference rows: gradient-boosted trees on the raw padded tokens / engineered features.
REFERENCE_MODES: tuple[str, ...] = ("bdt-raw", "bdt-features")
#: Every mode a study can run, in report order.
ALL_MODES: tuple[str, ...] = MODES + REFERENCE_MODES
#: A number of labelled training events, a percentage of the training split (``"1%"``,
#: ``"12.5%"``) or ``"all"`` (the whole training split).
LabelCount = int | Literal["all"] | Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%$")]


def label_fraction(value: LabelCount) -> float | None:
    """The fraction of the training split ``value`` stands for (``None`` for a count)."""
    if value == "all":
        return 1.0
    if isinstance(value, str):
        return float(value[:-1]) / 100.0
    return None


def parse_label_count(text: str) -> LabelCount:
    """``"100"`` -> 100, ``"10%"`` and ``"all"`` unchanged (command-line values)."""
    text = text.strip()
    if text == "all" or text.endswith("%"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"a label count is an integer, a percentage such as 10% or 'all', got {text!r}"
        ) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(_Strict):
    """Train/validation/test fractions; events are assigned by a hash of their id.

    The split of an event is a pure function of ``(dataset name, run, luminosityBlock,
    event, salt)``, so it is the same in every run, mode and seed, no event leaks across
    splits, and datasets that reuse the same ids are split independently.
    """

    train: float = Field(0.6, gt=0.0, lt=1.0)
    val: float = Field(0.2, gt=0.0, lt=1.0)
    test: float = Field(0.2, gt=0.0, lt=1.0)
    salt: int = Field(0, ge=0, description="changes the assignment (all splits at once)")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions sum to {total:g}, not 1")
        return self


class FinetuneOptimConfig(_Strict):
    """AdamW with warm-up then cosine decay (or a constant rate, see the loop's
    ``schedule``); the encoder gets ``lr * encoder_lr_factor``."""

    lr: float = Field(1e-3, gt=0.0, description="learning rate of the classification head")
    lr_grid: list[float] = Field(
        default_factory=list,
        description="study: try each learning rate (replacing lr) for every mode and label "
        "count on the first seed, keep the one with the lowest validation loss for all seeds; "
        "empty: lr only",
    )
    encoder_lr_factor: float = Field(
        0.1, gt=0.0, le=1.0, description="finetune mode: encoder lr = lr * this"
    )
    scratch_lr_factor: float = Field(
        1.0, gt=0.0, le=1.0, description="scratch mode: encoder lr = lr * this"
    )
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(20, ge=0, description="capped at a fifth of the planned steps")
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0)


class FinetuneLoopConfig(_Strict):
    """Training budget, evaluation cadence and early stopping.

    Fair comparisons train every mode until its validation loss stops improving: set
    ``max_steps`` and ``max_epochs`` to ``null`` (no cap; training ends only when
    ``patience`` validations pass without improvement) with ``schedule: constant``.
    A run records what ended it (``stopped_by``: patience, max_steps or max_epochs).
    """

    batch_size: int = Field(128, ge=2, description="events per step (smaller if fewer labels)")
    max_epochs: int | None = Field(100, ge=1, description="cap on epochs; null: none")
    max_steps: int | None = Field(3000, ge=1, description="cap on optimiser steps; null: none")
    schedule: Literal["cosine", "constant"] = Field(
        "cosine",
        description="after the warm-up: cosine decay over the planned steps, or constant "
        "(needed without a cap: there is no planned length to decay over)",
    )
    min_steps: int = Field(
        200,
        ge=0,
        description="plan at least this many steps even if max_epochs gives fewer "
        "(small label counts); early stopping still applies",
    )
    eval_every: int | None = Field(
        None, ge=1, description="steps between validation passes (default: once per epoch)"
    )
    min_eval_interval: int = Field(
        1,
        ge=1,
        description="default cadence: once per epoch but at most every this many steps "
        "(small label sets have one-step epochs)",
    )
    patience: int = Field(
        5, ge=1, description="stop after this many validations without improvement"
    )
    min_delta: float = Field(0.0, ge=0.0, description="improvement needed to reset patience")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    precision: Literal["auto", "fp32", "tf32", "bf16"] = Field(
        "auto", description="training: auto = bf16 on CUDA, fp32 on CPU; evaluation is fp32"
    )
    compact_tokens: bool = True
    log_every: int = Field(10, ge=1)
    progress: bool = False
    eval_batch_size: int = Field(1024, ge=1)

    @model_validator(mode="after")
    def _cap_or_constant(self) -> FinetuneLoopConfig:
        if self.schedule == "cosine" and self.max_steps is None and self.max_epochs is None:
            raise ValueError(
                "schedule 'cosine' decays over the planned steps: give max_steps or max_epochs, "
                "or use schedule 'constant' to train until the validation loss stops improving"
            )
        return self


class ReferenceConfig(_Strict):
    """The gradient-boosted reference rows (scikit-learn ``HistGradientBoostingClassifier``).

    Each is trained on the same labelled events, validation events and seeds as the
    encoder modes; the number of boosting iterations is chosen on the validation loss
    (stopping ``patience`` iterations after the best; ``max_iter`` is the first cap,
    doubled while the fit still improves: :mod:`jetfm_coffea.finetune.reference`), the
    learning rate from ``learning_rates`` on the first seed, like the encoder modes.
    """

    learning_rates: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2])
    max_iter: int = Field(2000, ge=1)
    patience: int = Field(30, ge=1, description="iterations without validation improvement")
    max_leaf_nodes: int = Field(31, ge=2)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0.0)
    btag_threshold: float = Field(0.2770, description="b-tagged jet: btag feature above this")
    jet_min_pt: float = Field(30.0, ge=0.0, description="GeV; jets counted in the features")
    n_jets: int = Field(6, ge=2, description="leading jets whose pT, eta, btag are features")


#: Fields added after the first runs: left out of the hash while at these defaults, so
#: a task config written before they existed keeps its hash (and its runs stay reusable).
_HASH_NEUTRAL_DEFAULTS: dict[str, Any] = {"type": "classification", "options": {}}


def _process_label(name: str, label: Any) -> Any:
    """A data label given as a generator process name (``ttbar``) -> its stable label."""
    if not isinstance(label, str):
        return label
    from jetfm_coffea.generate.processes import PROCESSES

    if label not in PROCESSES:
        raise ValueError(
            f"class {name!r}: {label!r} is neither a data label (an int) nor a generator "
            f"process ({', '.join(PROCESSES)})"
        )
    return PROCESSES[label].label


def process_of(dataset: str) -> str | None:
    """The generator process a dataset name stands for: ``ttbar``, ``ttbar_13p6TeV``
    (:func:`jetfm_coffea.generate.run.dataset_name`), ``zjets_13TeV_resim3``; None for
    any other name."""
    import re

    from jetfm_coffea.generate.processes import PROCESSES

    if dataset in PROCESSES:
        return dataset
    match = re.fullmatch(r"(.+?)_\d+(?:p\d+)?TeV(?:_.*)?", dataset)
    return match.group(1) if match and match.group(1) in PROCESSES else None


def check_class_processes(
    classes: dict[str, list[int]], label_datasets: dict[int, set[str]], source: str = "the data"
) -> None:
    """A class named after a known process must not take another process's data label.

    ``label_datasets``: the dataset names behind each data label of the data (a
    labelled fileset's datasets, a shard store's shards); a name standing for a
    generator process (:func:`process_of`) is that process. ``{ttbar: 1, wjets: 0}``
    on the generator's labels (ttbar 0, W+jets 1) would train a ``score_ttbar`` that is
    the W+jets probability at the same AUC: it raises :class:`ConfigError` naming both.
    """
    from jetfm_coffea.generate.processes import PROCESSES

    for name, labels in classes.items():
        if name not in PROCESSES:
            continue  # not a process name (signal, background, collisions...)
        for lab in labels:
            datasets = sorted(label_datasets.get(lab, set()))
            processes = {process_of(d) for d in datasets} - {None}
            if not processes or name in processes:
                continue
            others = " + ".join(sorted(repr(p) for p in processes))
            raise ConfigError(
                f"class {name!r} maps to data label {lab}, which holds {others} in {source} "
                f"(datasets {', '.join(datasets)}; the generator labels {name} "
                f"{PROCESSES[name].label}): score_{name} would be the probability of "
                f"{others}. Write the mapping as class -> processes, e.g. classes: "
                f"{{{name}: [{name}], ...}}"
            )


class TaskConfig(HashedConfig, _Strict):
    """A downstream task (classification, regression, ...) and how to train and study it."""

    version: Literal["1.0.0"] = "1.0.0"
    type: str = Field("classification", description="task type (finetune.task_types registry)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="options of the task type (e.g. regression target)"
    )
    classes: dict[str, list[int]] = Field(
        ...,
        description="class name -> data labels; the order defines the class index "
        "(regression: the samples that take part)",
    )
    signal: str | None = Field(None, description="class scored in ROC curves (default: last)")
    splits: SplitConfig = Field(default_factory=SplitConfig)
    selection: list[ObjectRequirement] = Field(
        default_factory=list,
        description="event selection applied to every mode before splitting into label sets",
    )
    modes: list[Mode] = Field(default_factory=lambda: list(MODES))
    labels: list[LabelCount] = Field(default_factory=lambda: [100, 1000, 10000, "all"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    class_weighting: Literal["none", "balanced"] = Field(
        "balanced", description="balanced: every class has the same total weight in the loss"
    )
    validation: Literal["proportional", "full"] = Field(
        "proportional",
        description="proportional: the validation set scales with the label count "
        "(val/train fraction ratio, at least min_val_events); full: the whole val split",
    )
    min_val_events: int = Field(50, ge=1)
    optim: FinetuneOptimConfig = Field(default_factory=FinetuneOptimConfig)
    train: FinetuneLoopConfig = Field(default_factory=FinetuneLoopConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    max_events_per_dataset: int | None = Field(
        None, ge=1, description="fileset input: read at most this many events per dataset"
    )

    @field_validator("classes", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for name, labels in value.items():
                labels = [labels] if isinstance(labels, int | str) else labels
                if isinstance(labels, list):
                    labels = [_process_label(name, lab) for lab in labels]
                out[name] = labels
            return out
        if isinstance(value, list):  # [name0, name1, ...]: class i has data label i
            return {str(name): [i] for i, name in enumerate(value)}
        return value

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        try:
            kind = TASK_TYPES[self.type]
        except ConfigError as err:
            raise ValueError(str(err)) from None
        kind.check_config(self)
        if not self.classes:
            raise ValueError("a task needs at least one class")
        seen: dict[int, str] = {}
        for name, labels in self.classes.items():
            if not labels:
                raise ValueError(f"class {name!r} lists no data label")
            for lab in labels:
                if lab < 0:
                    raise ValueError(f"class {name!r}: data label {lab} < 0 (-1 = unlabelled)")
                if lab in seen:
                    raise ValueError(f"data label {lab} is in classes {seen[lab]!r} and {name!r}")
                seen[lab] = name
        if self.signal is not None and self.signal not in self.classes:
            raise ValueError(f"signal {self.signal!r} is not a class: {list(self.classes)}")
        for n in self.labels:
            frac = label_fraction(n)
            if (frac is None and n < 1) or (frac is not None and not 0.0 < frac <= 1.0):
                raise ValueError(f"label counts must be >= 1, in (0%, 100%] or 'all', got {n}")
        if not self.modes or not self.labels or not self.seeds:
            raise ValueError("modes, labels and seeds must not be empty")
        return self

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def signal_class(self) -> str:
        return self.signal or self.class_names[-1]

    @property
    def signal_index(self) -> int:
        return self.class_names.index(self.signal_class)

    def label_map(self) -> dict[int, int]:
        """Data label -> class index."""
        return {lab: i for i, labels in enumerate(self.classes.values()) for lab in labels}

    def canonical_json(self) -> str:
        """Canonical JSON; the task type fields are left out while at their defaults."""
        data = self.model_dump(mode="json")
        for key, default in _HASH_NEUTRAL_DEFAULTS.items():
            if data.get(key) == default:
                data.pop(key)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def to_yaml(self) -> str:
        """The resolved config as YAML, headed by its hash."""
        return f"# hash: {self.hash()}\n{super().to_yaml()}"


#: Folder of the task YAMLs shipped with the package.
TASKS_DIR = Path(__file__).resolve().parent / "tasks"


def shipped_tasks() -> dict[str, Path]:
    """The task YAMLs shipped with the package, by name (``tth_vs_ttbar``, ...)."""
    return {p.stem: p for p in sorted(TASKS_DIR.glob("*.yaml"))}


def resolve_task_path(source: str | Path) -> Path:
    """A task YAML path, or the shipped task called ``source``; ConfigError otherwise."""
    path = Path(source)
    if path.is_file():
        return path
    shipped = shipped_tasks()
    if str(source) in shipped:
        return shipped[str(source)]
    raise ConfigError(
        f"task config {source} is neither a file nor a shipped task ({sorted(shipped)})"
    )


def load_task_config(
    source: str | Path | dict | TaskConfig | None = None, **updates: Any
) -> TaskConfig:
    """Load a :class:`TaskConfig` from YAML/dict; ``updates`` are dotted overrides.

    ``load_task_config("task.yaml", **{"train.max_steps": 50})``; a shipped task is
    loaded by name (``load_task_config("tth_vs_ttbar")``, see :func:`shipped_tasks`);
    ``None`` values are ignored. Raises :class:`~jetfm_coffea.errors.ConfigError` naming
    every invalid field.
    """
    if isinstance(source, str | Path):
        source = resolve_task_path(source)
    data = config_data(source, what="task config")
    apply_overrides(data, updates)
    return validate_config(TaskConfig, data, what="task config")
