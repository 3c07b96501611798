"""Pretraining configuration (YAML): model size, objectives and their weights, optimiser, loop.

The resolved configuration is written to the run directory with its hash
(``config.yaml`` starts with ``# hash: <sha256[:16]>``, the weaver convention of
naming an auto-resolved config by its content).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jetfm_coffea.augment.config import load_pipeline, standard_pipeline
from jetfm_coffea.config_base import HashedConfig, apply_overrides
from jetfm_coffea.errors import ConfigError

__all__ = [
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


class ObjectiveConfig(_Strict):
    """Which objectives are trained, and their weights in the total loss."""

    contrastive: Literal["ntxent", "vicreg", "none"] = "ntxent"
    contrastive_weight: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.1, gt=0.0, description="NT-Xent temperature")
    vicreg_sim: float = Field(25.0, ge=0.0)
    vicreg_var: float = Field(25.0, ge=0.0)
    vicreg_cov: float = Field(1.0, ge=0.0)
    n_views: int = Field(2, ge=2, le=8, description="views per event for the contrastive loss")
    masked_weight: float = Field(1.0, ge=0.0, description="masked object modelling weight")
    mask_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of tokens hidden")
    type_weight: float = Field(1.0, ge=0.0, description="object-type CE within the masked loss")
    supervised_weight: float = Field(0.0, ge=0.0, description="aux CE where label >= 0")

    @model_validator(mode="after")
    def _something(self) -> ObjectiveConfig:
        active = (
            (self.contrastive != "none" and self.contrastive_weight > 0)
            or self.masked_weight > 0
            or self.supervised_weight > 0
        )
        if not active:
            raise ValueError("no objective is active: give a contrastive/masked/supervised weight")
        return self

    @property
    def uses_contrastive(self) -> bool:
        return self.contrastive != "none" and self.contrastive_weight > 0


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
        description="fresh: objective.n_views new physics views of every event at every step "
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
    if isinstance(source, PretrainConfig):
        data = source.model_dump(mode="json")
    elif isinstance(source, str | Path):
        try:
            data = yaml.safe_load(Path(source).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read pretraining config {source}: {err}") from err
    else:
        data = dict(source or {})
    apply_overrides(data, updates)
    try:
        return PretrainConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid pretraining config: {err}") from err
