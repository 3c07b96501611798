"""Fine-tuning for downstream tasks (classification, regression), and the label-efficiency study.

The task type (``type:`` of a task config; registry :mod:`.task_types`) declares the
head, loss, metrics, plots and output columns of a task.

``prepare_finetune(task, pretrained_run, data)`` checks the inputs, applies the task's
selection (:mod:`.selection`) and splits the data by a hash of the dataset name and event
id; ``finetune(setup, out, mode=..., labels=..., seed=...)`` trains one classifier
(``linear-probe``, ``finetune`` or ``scratch``) and writes a run directory that
:func:`jetfm_coffea.train.load_run` loads; :mod:`.reference` trains the gradient-boosted
reference rows on the same events; ``label_efficiency`` runs the modes over label counts
x seeds (with a learning-rate choice per mode); ``evaluate_run`` scores one run.
:mod:`.campaign` runs the hard-task study end to end at a :mod:`.presets` scale.
"""

from jetfm_coffea.finetune.config import (
    MODES,
    FinetuneLoopConfig,
    FinetuneOptimConfig,
    SplitConfig,
    TaskConfig,
    load_task_config,
)
from jetfm_coffea.finetune.data import (
    SPLITS,
    LabelledEvents,
    assign_splits,
    dataset_keys,
    event_hash,
    load_labelled,
    read_labelled_fileset,
    sample_labels,
    split_assignment,
)
from jetfm_coffea.finetune.evaluate import evaluate_run, load_classifier
from jetfm_coffea.finetune.metrics import (
    background_rejection,
    calibration,
    classification_metrics,
    confusion,
    regression_metrics,
    roc,
)
from jetfm_coffea.finetune.study import StudyResult, aggregate, label_efficiency, markdown_table
from jetfm_coffea.finetune.task_types import (
    TASK_TYPES,
    TaskType,
    register_task_type,
    task_type_for,
)
from jetfm_coffea.finetune.trainer import (
    FinetuneResult,
    FinetuneSetup,
    PretrainedEncoder,
    build_classifier,
    build_finetune_optimizer,
    build_task_model,
    check_classes,
    finetune,
    load_pretrained,
    plan_task,
    predict,
    predict_outputs,
    prepare_finetune,
)

__all__ = [
    "MODES",
    "SPLITS",
    "TASK_TYPES",
    "FinetuneLoopConfig",
    "FinetuneOptimConfig",
    "FinetuneResult",
    "FinetuneSetup",
    "LabelledEvents",
    "PretrainedEncoder",
    "SplitConfig",
    "StudyResult",
    "TaskConfig",
    "TaskType",
    "aggregate",
    "assign_splits",
    "background_rejection",
    "build_classifier",
    "build_finetune_optimizer",
    "build_task_model",
    "calibration",
    "check_classes",
    "classification_metrics",
    "confusion",
    "dataset_keys",
    "evaluate_run",
    "event_hash",
    "finetune",
    "label_efficiency",
    "load_classifier",
    "load_labelled",
    "load_pretrained",
    "load_task_config",
    "markdown_table",
    "plan_task",
    "predict",
    "predict_outputs",
    "prepare_finetune",
    "read_labelled_fileset",
    "register_task_type",
    "regression_metrics",
    "roc",
    "sample_labels",
    "split_assignment",
    "task_type_for",
]
