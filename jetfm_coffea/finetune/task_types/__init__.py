"""Downstream task types (``type:`` of a task config): a registry, and the shipped types.

See :mod:`.registry` for what a type declares; :mod:`.classification` and
:mod:`.regression` are registered like any other (importing this package registers them).
"""

from jetfm_coffea.finetune.task_types.classification import Classification
from jetfm_coffea.finetune.task_types.registry import (
    TASK_TYPES,
    NoOptions,
    TaskLoss,
    TaskType,
    register_task_type,
    task_type_for,
)
from jetfm_coffea.finetune.task_types.regression import Regression, RegressionOptions

__all__ = [
    "TASK_TYPES",
    "Classification",
    "NoOptions",
    "Regression",
    "RegressionOptions",
    "TaskLoss",
    "TaskType",
    "register_task_type",
    "task_type_for",
]
