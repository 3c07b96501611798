"""The downstream-task registry: what a task type declares, and how types are found.

A task type (``classification``, ``regression``, ...) is a :class:`TaskType` subclass
registered under its name with :func:`register_task_type`. The task YAML picks it
(``type: regression``) and configures it (``options:``, validated by the type's
``options_model``). A type declares, for the trainer, the study, the evaluation, the
scorer and the exporter:

* ``head``: the model head it trains (a name of :data:`jetfm_coffea.model.HEADS`) and
  :meth:`TaskType.n_outputs`, its output count;
* :meth:`TaskType.event_values`: per-event training labels beyond the class index
  (regression: the target values), and which events they are defined for;
* :meth:`TaskType.task_loss`: the loss (and the validation summary) of one run, fitted
  on its labelled events, and what is folded into the head after training;
* :meth:`TaskType.predict`: the outputs of a trained head (probabilities, value + width);
* :meth:`TaskType.metrics` and ``study_metrics``: test metrics, what a study aggregates;
* :meth:`TaskType.columns`: the names of the scorer's output columns (also the exported
  model's outputs), recorded in the run's ``run.json`` (``outputs``);
* :meth:`TaskType.plots` / :meth:`TaskType.study_plots` and the model-card lines.

Adding a task type is one module with a registered subclass (plus, for a type shipped
with the package, its import in ``task_types/__init__.py``)::

    from jetfm_coffea.finetune.task_types import TaskType, register_task_type

    @register_task_type
    class Ranking(TaskType):
        name = "ranking"
        head = "classifier"
        ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from jetfm_coffea.model.model import HEADS
from jetfm_coffea.registry import Registry

if TYPE_CHECKING:
    from jetfm_coffea.finetune.config import TaskConfig
    from jetfm_coffea.finetune.data import LabelledEvents

__all__ = [
    "TASK_TYPES",
    "NoOptions",
    "TaskLoss",
    "TaskType",
    "register_task_type",
    "task_type_for",
]


class NoOptions(BaseModel):
    """A task type without options."""

    model_config = ConfigDict(extra="forbid")


class TaskLoss(ABC):
    """The loss of one training run (fitted on that run's labelled events)."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Weighted mean loss of training outputs (:meth:`TaskType.train_outputs`)."""

    def val_record(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Extra validation numbers logged next to ``val_loss`` (e.g. ``val_acc``)."""
        return {}

    def finalize(self, head: torch.nn.Module) -> None:  # noqa: B027 (optional hook)
        """Fold what the loss standardised into the trained head (default: nothing)."""

    def describe(self) -> dict[str, Any]:
        """What the run records about the fit (``run.json``)."""
        return {}


class TaskType(ABC):
    """One kind of downstream task, bound to a task config."""

    name: ClassVar[str]
    head: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: metrics aggregated over seeds by the label-efficiency study
    study_metrics: ClassVar[tuple[str, ...]]
    #: metrics drawn against the label count (``label_efficiency.png``)
    curve_metrics: ClassVar[tuple[str, ...]] = ("auc", "rejection_50")
    #: the headline metric, and whether larger is better
    primary: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    #: modes this type supports (the tree references are classification only)
    modes: ClassVar[tuple[str, ...]] = ("linear-probe", "finetune", "scratch")
    #: ``run.json`` kind of a trained run
    run_kind: ClassVar[str]

    def __init__(self, task: TaskConfig):
        self.task = task
        self.options: Any = self.options_model.model_validate(task.options)

    # -- configuration --------------------------------------------------------------
    @classmethod
    def check_config(cls, task: TaskConfig) -> None:
        """Raise ``ValueError`` for a task config this type cannot run (pydantic reports it)."""
        cls.options_model.model_validate(task.options)
        bad = [m for m in task.modes if m not in cls.modes]
        if bad:
            raise ValueError(f"task type {cls.name!r} supports modes {list(cls.modes)}, not {bad}")

    @abstractmethod
    def n_outputs(self) -> int:
        """Output count of the head (the model config's ``n_classes``)."""

    # -- data -----------------------------------------------------------------------
    def event_values(self, data: LabelledEvents) -> np.ndarray | None:
        """Per-event training labels beyond the class index (None: the class index is the
        label); NaN where undefined (those events leave the task, counted)."""
        return None

    def value_branches(self) -> list[str]:
        """Input branches :meth:`event_values` needs (read with the tokens)."""
        return []

    def labels(self, targets: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """Training label of every event (class index, or the target values)."""
        return targets if values is None else values

    # -- training -------------------------------------------------------------------
    @abstractmethod
    def task_loss(self, y_train: np.ndarray, w_train: np.ndarray) -> TaskLoss:
        """The loss of a run on labels ``y_train`` (weights ``w_train``)."""

    def train_outputs(self, head: torch.nn.Module, embedding: torch.Tensor) -> torch.Tensor:
        """What the loss is computed on (default: the head's output)."""
        return head(embedding)

    def predict(self, head: torch.nn.Module, embedding: torch.Tensor) -> torch.Tensor:
        """Scored outputs ``[N, len(columns)]`` of a trained head (float32): the head's
        output through the activation registered with it (what the scorer injects)."""
        return HEADS[self.head].scored.activation(head(embedding).float())

    # -- results --------------------------------------------------------------------
    @abstractmethod
    def metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Test metrics of ``outputs`` (:meth:`predict`) against labels ``y``."""

    @abstractmethod
    def columns(self) -> list[str]:
        """Scorer output columns / exported outputs, one per :meth:`predict` column."""

    def run_info(self) -> dict[str, Any]:
        """Task description recorded in ``run.json``."""
        return {"task_type": self.name, "outputs": self.columns()}

    def score_arrays(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays of ``test_scores.npz`` besides weights and ids."""
        return {"outputs": outputs, "target": y}

    def headline(self, row: dict[str, Any]) -> str:
        """One log line's metrics of a study row."""
        return f"{self.primary} {row[self.primary]:.4f}"

    @abstractmethod
    def card_lines(self, info: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
        """Model-card text: ``head`` (one line), ``task`` and ``metrics`` (Markdown)."""

    @abstractmethod
    def markdown_table(self, aggregate: Sequence[dict[str, Any]], title: str | None) -> str:
        """The study's table of aggregated rows."""

    def plots(self, outputs: np.ndarray, y: np.ndarray, out: Path, name: str) -> dict[str, Path]:
        """Evaluation figures of one run (default: none)."""
        return {}

    def study_plots(
        self,
        aggregate: Sequence[dict[str, Any]],
        runs: dict[str, Path],
        out: Path,
        n_labels: int,
        seed: int,
    ) -> dict[str, Path]:
        """Study figures besides the label-efficiency curves: ``runs`` maps each mode to
        its run directory at the largest label count ``n_labels`` and first ``seed``."""
        return {}


#: Registered task types by name (``type:`` of a task config).
TASK_TYPES: Registry[type[TaskType]] = Registry(
    "task type", hint="add one with jetfm_coffea.finetune.register_task_type"
)


def register_task_type(cls: type[TaskType]) -> type[TaskType]:
    """Class decorator: make ``cls`` available as ``type: <cls.name>`` in task configs."""
    return TASK_TYPES.register(cls.name, cls)


def task_type_for(task: TaskConfig) -> TaskType:
    """The task type of ``task``, bound to it."""
    return TASK_TYPES[task.type](task)
