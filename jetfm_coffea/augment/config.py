"""Declarative augmentation pipelines: a pydantic discriminated union of named steps.

Example (YAML)::

    version: "1.0.0"
    seed: 12345
    views: 2
    steps:
      - {name: rotate_phi}
      - {name: boost_z, max_rapidity: 0.5}
      - {name: boost_transverse, max_beta: 0.1}
      - {name: reflect_eta, probability: 0.5}
      - name: smear_energy
        widths: {Jet: {scale: 0.02, resolution: 0.03}, Muon: {scale: 0.002, resolution: 0.005}}
      - {name: drop_objects, probability: 0.1}

The steps are validated against the parameter models of the registry
(:data:`jetfm_coffea.augment.registry.AUGMENTATIONS`): an augmentation registered with
``register(name, params=Model)`` -- built-in or not -- is a valid step. Unknown names
or out-of-range parameters raise :class:`~jetfm_coffea.errors.ConfigError` listing
every registered augmentation with its parameters and their allowed ranges.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

from jetfm_coffea.augment.registry import AUGMENTATIONS, AugmentationStep
from jetfm_coffea.config_base import HashedConfig, load_config

__all__ = [
    "STANDARD_STEPS",
    "AugmentationPipeline",
    "AugmentationSpec",
    "BoostTransverse",
    "BoostZ",
    "DropObjects",
    "MaskObjects",
    "ReflectEta",
    "RotatePhi",
    "SmearEnergy",
    "SmearWidth",
    "describe_augmentations",
    "load_pipeline",
    "standard_pipeline",
    "step_models",
]


class RotatePhi(AugmentationStep):
    """Global azimuthal rotation by an angle uniform in [-max_angle, max_angle]; MET rotates."""

    name: Literal["rotate_phi"] = "rotate_phi"
    max_angle: float = Field(math.pi, gt=0.0, le=math.pi, description="radians")


class BoostZ(AugmentationStep):
    """Longitudinal boost: every rapidity shifts by dy uniform in [-max_rapidity, max_rapidity]."""

    name: Literal["boost_z"] = "boost_z"
    max_rapidity: float = Field(0.5, ge=0.0, le=3.0, description="|dy| bound")


class BoostTransverse(AugmentationStep):
    """Transverse boost: ``|beta|`` uniform in [0, max_beta], direction uniform in phi."""

    name: Literal["boost_transverse"] = "boost_transverse"
    max_beta: float = Field(0.1, ge=0.0, le=0.5, description="|beta| bound")


class ReflectEta(AugmentationStep):
    """z -> -z (eta -> -eta) for a fraction ``probability`` of events."""

    name: Literal["reflect_eta"] = "reflect_eta"
    probability: float = Field(0.5, ge=0.0, le=1.0)


class SmearWidth(BaseModel):
    """Relative energy smearing of one object type: E -> E (1 + scale z_evt + resolution z_obj).

    ``scale``: width of a coherent per-event shift shared by all objects of the type
    (energy-scale uncertainty); ``resolution``: independent per-object width.
    """

    model_config = ConfigDict(extra="forbid")

    scale: float = Field(0.0, ge=0.0, le=0.2)
    resolution: float = Field(0.0, ge=0.0, le=0.3)


def _default_widths() -> dict[str, SmearWidth]:
    lepton = SmearWidth(scale=0.002, resolution=0.005)
    return {
        "Jet": SmearWidth(scale=0.02, resolution=0.03),
        "Muon": lepton,
        "Electron": SmearWidth(scale=0.003, resolution=0.008),
        "Photon": SmearWidth(scale=0.003, resolution=0.008),
    }


class SmearEnergy(AugmentationStep):
    """Energy scale and resolution smearing per object type (collection name -> widths).

    Collections not listed (and collections absent from the token config) are not
    smeared. MET is recomputed from the smeared visible objects when ``propagate_met``.
    """

    name: Literal["smear_energy"] = "smear_energy"
    widths: dict[str, SmearWidth] = Field(default_factory=_default_widths)
    preserve_mass: bool = Field(True, description="keep m, change |p| (else scale the 4-vector)")
    propagate_met: bool = Field(True, description="MET -= sum of the smeared pT changes")


class DropObjects(AugmentationStep):
    """Remove each object with ``probability`` and close the gaps (never all of them)."""

    name: Literal["drop_objects"] = "drop_objects"
    probability: float = Field(0.1, ge=0.0, le=0.9)
    include_met: bool = Field(False, description="MET may be dropped too")


class MaskObjects(AugmentationStep):
    """Mask each object with ``probability`` in place: its slot stays, invalid (never all)."""

    name: Literal["mask_objects"] = "mask_objects"
    probability: float = Field(0.15, ge=0.0, le=0.9)
    include_met: bool = Field(False, description="MET may be masked too")


#: The type of a pipeline step: the parameters of a registered augmentation.
AugmentationSpec = AugmentationStep


def step_models() -> dict[str, type[AugmentationStep]]:
    """Name -> parameter model of every registered augmentation that has one (a pipeline's
    valid steps), in registration order."""
    return {name: a.params for name, a in AUGMENTATIONS.items() if a.params is not None}


def _range(info: Any) -> str:
    low, high = "", ""
    for m in info.metadata:
        if isinstance(m, at.Ge):
            low = f"{m.ge:g} <= "
        elif isinstance(m, at.Gt):
            low = f"{m.gt:g} < "
        elif isinstance(m, at.Le):
            high = f" <= {m.le:g}"
        elif isinstance(m, at.Lt):
            high = f" < {m.lt:g}"
    ann = getattr(info.annotation, "__name__", str(info.annotation))
    default = info.get_default(call_default_factory=True)
    if isinstance(default, BaseModel | dict):
        default = json.dumps(json.loads(json.dumps(default, default=lambda o: o.model_dump())))
    return f"{low}{ann}{high} (default {default})" if low or high else f"{ann} (default {default})"


def describe_augmentations() -> str:
    """Every valid augmentation name with its parameters and allowed ranges."""
    lines = []
    for name, cls in step_models().items():
        params = [
            f"{field}: {_range(info)}"
            for field, info in cls.model_fields.items()
            if field != "name"
        ]
        lines.append(f"  {name}: " + "; ".join(params))
    ranges = "; ".join(f"{f}: {_range(i)}" for f, i in SmearWidth.model_fields.items())
    lines.append(f"  (smear_energy widths per collection: {ranges})")
    return "\n".join(lines)


class AugmentationPipeline(HashedConfig):
    """K views per event, each made by the same ordered steps with per-view random draws."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1.0.0"] = "1.0.0"
    seed: int = Field(0, ge=0, lt=2**63, description="global seed of all random draws")
    views: int = Field(2, ge=1, le=64, description="views per event (K)")
    steps: list[SerializeAsAny[AugmentationStep]] = Field(default_factory=list)

    @field_validator("steps", mode="before")
    @classmethod
    def _registered_steps(cls, value: Any) -> Any:
        """Each step validated by the parameter model registered under its name."""
        if not isinstance(value, list | tuple):
            return value
        steps = []
        for i, step in enumerate(value):
            if isinstance(step, AugmentationStep):
                step = step.model_dump()
            name = step.get("name") if isinstance(step, dict) else None
            models = step_models()
            if name not in models:
                raise ValueError(
                    f"step {i}: unknown augmentation {name!r}; valid names: {', '.join(models)}"
                )
            try:
                steps.append(models[name].model_validate(step))
            except ValidationError as err:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
                )
                raise ValueError(f"step {i} ({name}): {problems}") from None
        return steps


def load_pipeline(
    source: str | Path | dict | AugmentationPipeline | None = None,
) -> AugmentationPipeline:
    """Build a pipeline from a YAML/JSON path, a dict, an instance or None (no steps).

    A file may hold the pipeline at top level or under an ``augment`` key. Raises
    :class:`ConfigError` with pydantic's description of every problem followed by the
    valid augmentation names and parameter ranges.
    """
    if source is None:
        return AugmentationPipeline()
    return load_config(
        AugmentationPipeline,
        source,
        what="augmentation pipeline",
        section="augment",
        hint=lambda: f"\nvalid augmentations and parameter ranges:\n{describe_augmentations()}",
    )


#: The pretraining pipeline used by the demo and the benchmarks: exact symmetries, detector
#: resolution smearing and object dropout.
STANDARD_STEPS: tuple[dict[str, Any], ...] = (
    {"name": "rotate_phi"},
    {"name": "boost_z", "max_rapidity": 0.5},
    {"name": "boost_transverse", "max_beta": 0.1},
    {"name": "reflect_eta", "probability": 0.5},
    {"name": "smear_energy"},
    {"name": "drop_objects", "probability": 0.1},
)


def standard_pipeline(views: int = 2, seed: int = 0) -> AugmentationPipeline:
    """:data:`STANDARD_STEPS` with ``views`` views per event."""
    return AugmentationPipeline(views=views, seed=seed, steps=list(STANDARD_STEPS))
