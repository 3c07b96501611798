"""The public API of ``jetfm_coffea.train`` is pinned: a change to it is a deliberate edit here."""

from __future__ import annotations

import importlib
import pkgutil

import jetfm_coffea.train as package

PUBLIC = {
    "BatchSource", "Encoded", "LoopConfig", "ModelSection", "Objective", "ObjectiveConfig",
    "ObjectiveParams", "OptimConfig", "PretrainConfig", "PretrainResult", "PretrainTask",
    "RunConfigs", "TensorEventDataset", "ValidationConfig", "batch_provenance",
    "check_token_config", "collapse_metrics", "events_source", "get_objective", "jitter_views",
    "knn_accuracy", "load_pretrain_config", "load_run", "make_views", "masked_object_loss",
    "nt_xent", "open_data", "pretrain", "read_metrics", "register_objective",
    "registered_objectives", "shards_source", "vicreg",
}  # fmt: skip


def test_the_package_exports_exactly_the_pinned_names():
    assert set(package.__all__) == PUBLIC
    assert len(package.__all__) == len(PUBLIC)  # no name twice
    namespace: dict = {}
    exec(f"from {package.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def test_every_module_declares_its_public_names():
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        assert isinstance(getattr(module, "__all__", None), list), info.name
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, (info.name, missing)
