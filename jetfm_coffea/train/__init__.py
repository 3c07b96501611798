"""Self-supervised pretraining: objectives, data contract, loop, checkpoints, run directory.

Objectives are registered by name (:func:`register_objective`, see
:mod:`jetfm_coffea.train.registry`); ``objective.<name>`` in the config is their section.
"""

from jetfm_coffea.tokens.config import check_token_config
from jetfm_coffea.train.builtin_objectives import masked_object_loss, nt_xent, vicreg
from jetfm_coffea.train.config import (
    LoopConfig,
    ModelSection,
    ObjectiveConfig,
    OptimConfig,
    PretrainConfig,
    ValidationConfig,
    load_pretrain_config,
)
from jetfm_coffea.train.data import (
    BatchSource,
    TensorEventDataset,
    batch_provenance,
    events_source,
    open_data,
    shards_source,
)
from jetfm_coffea.train.loop import PretrainResult, pretrain
from jetfm_coffea.train.monitor import collapse_metrics, knn_accuracy
from jetfm_coffea.train.objectives import PretrainTask
from jetfm_coffea.train.pretrain_run import RunConfigs, load_run, read_metrics
from jetfm_coffea.train.registry import (
    OBJECTIVES,
    Encoded,
    Objective,
    ObjectiveParams,
    register_objective,
)
from jetfm_coffea.train.views import jitter_views, make_views

__all__ = [
    "OBJECTIVES",
    "BatchSource",
    "Encoded",
    "LoopConfig",
    "ModelSection",
    "Objective",
    "ObjectiveConfig",
    "ObjectiveParams",
    "OptimConfig",
    "PretrainConfig",
    "PretrainResult",
    "PretrainTask",
    "RunConfigs",
    "TensorEventDataset",
    "ValidationConfig",
    "batch_provenance",
    "check_token_config",
    "collapse_metrics",
    "events_source",
    "jitter_views",
    "knn_accuracy",
    "load_pretrain_config",
    "load_run",
    "make_views",
    "masked_object_loss",
    "nt_xent",
    "open_data",
    "pretrain",
    "read_metrics",
    "register_objective",
    "shards_source",
    "vicreg",
]
