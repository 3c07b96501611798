"""Physics augmentations: exact Lorentz boosts, rotations, reflections, smearing, dropping.

One set of backend-agnostic kernels (:mod:`.kernels`) runs on numpy/awkward arrays
inside coffea processors and on torch tensors in the training loader; a registry maps
names to implementations and their parameter models (:mod:`.registry`; third parties
register theirs the same way), a pydantic pipeline declares the steps
(:mod:`.config`) and counter-based per-event random numbers (:mod:`.rng`) make every
view a function of (seed, run, luminosityBlock, event, view, step) only.
"""

from jetfm_coffea.augment.config import (
    AugmentationPipeline,
    AugmentationSpec,
    BoostTransverse,
    BoostZ,
    DropObjects,
    MaskObjects,
    ReflectEta,
    RotatePhi,
    SmearEnergy,
    SmearWidth,
    describe_augmentations,
    load_pipeline,
    standard_pipeline,
)
from jetfm_coffea.augment.pipeline import (
    apply_acceptance,
    apply_pipeline,
    augment_objects,
    augment_tensors,
    augment_tokens,
    augment_views,
)
from jetfm_coffea.augment.registry import AUGMENTATIONS, AugmentationStep, StepContext, register
from jetfm_coffea.augment.rng import StepRandom, event_step_keys

__all__ = [
    "AUGMENTATIONS",
    "AugmentationPipeline",
    "AugmentationSpec",
    "AugmentationStep",
    "BoostTransverse",
    "BoostZ",
    "DropObjects",
    "MaskObjects",
    "ReflectEta",
    "RotatePhi",
    "SmearEnergy",
    "SmearWidth",
    "StepContext",
    "StepRandom",
    "apply_acceptance",
    "apply_pipeline",
    "augment_objects",
    "augment_tensors",
    "augment_tokens",
    "augment_views",
    "describe_augmentations",
    "event_step_keys",
    "load_pipeline",
    "register",
    "standard_pipeline",
]
