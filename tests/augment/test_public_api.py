"""The public API of ``jetfm_coffea.augment`` is pinned: changing it is a deliberate edit."""

from __future__ import annotations

import importlib
import pkgutil

import jetfm_coffea.augment as package

PUBLIC = {
    "AugmentationPipeline", "AugmentationSpec", "AugmentationStep", "BoostTransverse", "BoostZ",
    "DropObjects", "MaskObjects", "ReflectEta", "RotatePhi", "SmearEnergy", "SmearWidth",
    "StepContext", "StepRandom", "apply_acceptance", "apply_pipeline", "augment_objects",
    "augment_tensors", "augment_tokens", "augment_views", "describe_augmentations", "event_keys",
    "load_pipeline", "register", "registered", "standard_pipeline", "step_params",
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
