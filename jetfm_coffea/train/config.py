"""Pretraining configuration (YAML): model size, objectives and their weights, optimiser, loop.

The resolved configuration is written to the run directory with its hash
(``config.yaml`` starts with ``# hash: <sha256[:16]>``, the weaver convention of
naming an auto-resolved config by its content).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from jetfm_coffea.augment.config import load_pipeline, standard_pipeline
from jetfm_coffea.config_base import HashedConfig, apply_overrides, config_data, validate_config
from jetfm_coffea.train import builtin_objectives as _builtin  # noqa: F401  (registers)
from jetfm_coffea.train import process_objective as _process  # noqa: F401  (registers)
from jetfm_coffea.train import truth_objective as _truth  # noqa: F401  (registers)
from jetfm_coffea.train.registry import (
    OBJECTIVES,
    Objective,
    ObjectiveParams,
)

__all__ = [
    "DEFAULT_VIEWS",
    "LEGACY_OBJECTIVE_KEYS",
    "LEGACY_VIEW_HOOK",
    "LoopConfig",
    "ModelSection",
    "ObjectiveConfig",
    "OptimConfig",
    "PretrainConfig",
    "ValidationConfig",
    "load_pretrain_config",
]

#: ``train.view_hook`` of runs made before fresh physics views (the toy jitter hook, then
#: the default): read as "no hook" so that those runs resume with the physics views.
LEGACY_VIEW_HOOK = "jetfm_coffea.train.views:make_views"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Strict):
    """Model size preset plus overrides of :class:`~jetfm_coffea.model.ModelConfig` fields."""

    size: Literal["tiny", "small", "base", "custom"] = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict, description="e.g. {dropout: 0.1}")


#: Flat keys of the objective section before the registry -> (objective, parameter);
#: still read (``contrastive: vicreg`` sets the contrastive loss), written nested.
LEGACY_OBJECTIVE_KEYS: dict[str, tuple[str, str]] = {
    "contrastive": ("contrastive", "loss"),
    "contrastive_weight": ("contrastive", "weight"),
    "temperature": ("contrastive", "temperature"),
    "vicreg_sim": ("contrastive", "vicreg_sim"),
    "vicreg_var": ("contrastive", "vicreg_var"),
    "vicreg_cov": ("contrastive", "vicreg_cov"),
    "n_views": ("contrastive", "n_views"),
    "masked_weight": ("masked", "weight"),
    "mask_fraction": ("masked", "mask_fraction"),
    "type_weight": ("masked", "type_weight"),
    "supervised_weight": ("supervised", "weight"),
}

#: Views per event when no active objective asks for views (the fresh-view pipeline's K).
DEFAULT_VIEWS = 2


class ObjectiveConfig(_Strict):
    """Which objectives are trained: one section per registered objective.

    ``objective.<name>`` holds the parameters of the objective registered under that
    name (:func:`~jetfm_coffea.train.register_objective`); a section not given takes
    its defaults (``contrastive`` and ``masked`` are on by default). The flat keys of
    earlier configs (:data:`LEGACY_OBJECTIVE_KEYS`, e.g. ``masked_weight: 0``) are
    still read; given with a section, the flat key wins (it is an override).
    The resolved config writes the sections of the objectives that are on, or on by
    default.
    """

    sections: dict[str, SerializeAsAny[ObjectiveParams]]

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if isinstance(data, ObjectiveConfig):
            return data
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(
                f"expected a mapping of objective name -> section, got {type(data).__name__}"
            )
        if set(data) == {"sections"} and isinstance(data["sections"], Mapping):
            data = data["sections"]  # ObjectiveConfig(sections=...)
        registered = list(OBJECTIVES)
        given: dict[str, Any] = {}
        flat: list[tuple[str, str, Any]] = []
        for key, value in data.items():
            if key in LEGACY_OBJECTIVE_KEYS and not (key in registered and _is_section(value)):
                flat.append((*LEGACY_OBJECTIVE_KEYS[key], value))
            elif key in registered:
                given[key] = value
            else:
                raise ValueError(
                    f"unknown objective {key!r}; registered objectives: "
                    f"{', '.join(registered)} (add one with "
                    "jetfm_coffea.train.register_objective)"
                )
        sections: dict[str, ObjectiveParams] = {}
        for name in registered:
            objective = OBJECTIVES[name]
            section = given.get(name)
            if isinstance(section, ObjectiveParams):
                section = section.model_dump()
            section = dict(section or {})
            section.update({param: value for owner, param, value in flat if owner == name})
            try:
                sections[name] = objective.params.model_validate(section)
            except ValidationError as err:
                problems = "; ".join(
                    f"objective.{'.'.join(map(str, (name, *e['loc'])))}: {e['msg']}"
                    for e in err.errors()
                )
                raise ValueError(problems) from None
        return {"sections": sections}

    @model_validator(mode="after")
    def _something(self) -> ObjectiveConfig:
        if not self.active():
            raise ValueError(
                "no objective is active: give one of "
                f"{', '.join(self.sections)} a weight > 0 (objective.<name>.weight)"
            )
        return self

    @model_serializer(mode="plain")
    def _dump(self, info: SerializationInfo) -> dict[str, Any]:
        out = {}
        for name, params in self.sections.items():
            objective = OBJECTIVES[name]
            if objective.active(params) or objective.active(objective.params()):
                out[name] = params.model_dump(mode=info.mode)
        return out

    def section(self, name: str) -> ObjectiveParams:
        """The parameters of objective ``name`` (ConfigError for an unregistered name)."""
        OBJECTIVES[name]
        return self.sections[name]

    def active(self) -> list[tuple[Objective, ObjectiveParams]]:
        """``(objective, its parameters)`` of the objectives that are on, summation order."""
        pairs = [(OBJECTIVES[name], params) for name, params in self.sections.items()]
        return [(objective, params) for objective, params in pairs if objective.active(params)]

    def heads(self) -> list[str]:
        """The model heads the active objectives train, in registration order."""
        return list(dict.fromkeys(h for objective, _ in self.active() for h in objective.heads))

    @property
    def uses_views(self) -> bool:
        """Whether an active objective reads contrastive views."""
        return any(objective.uses_views for objective, _ in self.active())

    @property
    def hides_tokens(self) -> bool:
        """Whether an active objective hides tokens (the encoder's mask token is trained)."""
        return any(objective.hides_tokens for objective, _ in self.active())

    @property
    def n_views(self) -> int:
        """Views per event: the most an active objective needs, else :data:`DEFAULT_VIEWS`."""
        wanted = [o.n_views(p) for o, p in self.active() if o.uses_views]
        return max(wanted, default=DEFAULT_VIEWS)

    def card_lines(self) -> list[str]:
        """The model card's lines of the active objectives."""
        return [objective.card_line(params) for objective, params in self.active()]


def _is_section(value: Any) -> bool:
    return isinstance(value, Mapping | ObjectiveParams)


class OptimConfig(_Strict):
    """AdamW with a linear warm-up then cosine decay; gradient clipping by global norm."""

    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.05, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(100, ge=0, description="capped at steps // 5")
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0)


class LoopConfig(_Strict):
    """The training loop."""

    steps: int = Field(1000, ge=1, description="optimiser steps")
    batch_size: int = Field(256, ge=2, description="events per step and rank")
    seed: int = 0
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    precision: Literal["auto", "fp32", "tf32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU (jetfm_coffea.runtime)"
    )
    compile: bool = Field(False, description="torch.compile the model")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    compact_tokens: bool = Field(
        True, description="drop padding common to a batch (valid tokens first)"
    )
    group_tokens: bool = Field(
        True,
        description="encode events of similar token count as separate groups (same result, "
        "no attention over padding; one host sync per step)",
    )
    prefetch: int = Field(
        2,
        ge=0,
        description="batches prepared ahead in a background thread: compacted, pinned and "
        "copied to the GPU while the current one trains (0: prepare in the loop)",
    )
    view_hook: str | None = Field(
        None,
        description="explicit alternative view maker 'module:function' (batch, n_views, "
        "generator) -> (views, view_mask), used instead of fresh or stored views; e.g. the "
        "toy jetfm_coffea.train.views:jitter_views",
    )
    progress: bool = True
    monitor_every: int = Field(50, ge=1, description="collapse monitors (std, effective rank)")

    @field_validator("view_hook")
    @classmethod
    def _legacy_hook(cls, value: str | None) -> str | None:
        return None if value == LEGACY_VIEW_HOOK else value


class ValidationConfig(_Strict):
    """Labelled validation set for a k-NN probe of the embedding (optional)."""

    path: str | None = Field(None, description=".npz with tokens, mask, label")
    every: int = Field(200, ge=1)
    k: int = Field(20, ge=1)
    max_events: int = Field(4000, ge=10)


class PretrainConfig(HashedConfig, _Strict):
    """Everything a pretraining run needs besides the data."""

    version: Literal["1.0.0"] = "1.0.0"
    model: ModelSection = Field(default_factory=ModelSection)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: LoopConfig = Field(default_factory=LoopConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    tokens: dict[str, Any] | None = Field(
        None, description="expected token config; the data must match it"
    )
    views: Literal["fresh", "stored", "resim", "resim+physics"] = Field(
        "fresh",
        description="fresh: objective.n_views (e.g. objective.contrastive.n_views) new physics "
        "views of every event at every step "
        "(the 'augment' pipeline, on the training device); stored: the views in the shards; "
        "resim: the re-simulated siblings of each hard event (a store of 'jetfm generate "
        "--resim K' samples; the first objective.n_views copies); resim+physics: fresh "
        "physics views of the siblings (view v: copy v % K)",
    )
    augment: dict[str, Any] | None = Field(
        None,
        description="augmentation pipeline of the fresh views (the build-shards 'augment:' "
        "YAML); default: the standard pipeline, seeded with train.seed",
    )

    @model_validator(mode="after")
    def _resolve_augment(self) -> PretrainConfig:
        """Fresh views: validate the pipeline and record it resolved (the default included)."""
        if self.views not in ("fresh", "resim+physics"):
            return self
        try:
            if self.augment is None:
                pipeline = standard_pipeline(views=self.objective.n_views, seed=self.train.seed)
            else:
                pipeline = load_pipeline(self.augment)
        except Exception as err:  # ConfigError, pydantic.ValidationError
            raise ValueError(f"augment: {err}") from err
        self.augment = pipeline.model_dump(mode="json")
        return self

    def to_yaml(self) -> str:
        """The resolved config as YAML, headed by its hash."""
        return f"# hash: {self.hash()}\n{super().to_yaml()}"


def load_pretrain_config(
    source: str | Path | dict | PretrainConfig | None = None, **updates: Any
) -> PretrainConfig:
    """Load a :class:`PretrainConfig` from YAML/dict; ``updates`` are dotted overrides.

    ``load_pretrain_config("cfg.yaml", **{"train.steps": 10, "model.size": "small"})``.
    Raises :class:`~jetfm_coffea.errors.ConfigError` naming every invalid field.
    """
    data = config_data(source, what="pretraining config")
    apply_overrides(data, updates)
    return validate_config(PretrainConfig, data, what="pretraining config")
