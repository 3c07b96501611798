"""Model configuration: size presets (``tiny``/``small``/``base``) and the token interface.

The model reads its input layout (feature names, number of object types) from the
:class:`~jetfm_coffea.tokens.TokenConfig` the data was built with, so a model can
never silently be fed tokens with a different feature order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from jetfm_coffea.config_base import HashedConfig
from jetfm_coffea.tokens.config import TokenConfig

__all__ = [
    "CONTINUOUS_EXCLUDE",
    "LEGACY_PAIR_VERSION",
    "PAIR_FEATURES",
    "PAIR_VERSION",
    "SIZES",
    "ModelConfig",
    "load_model_config",
    "model_config_for",
    "pair_features_description",
]

#: Size presets: transformer width, heads, layers (parameter targets in the comments).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"dim": 48, "heads": 4, "layers": 3, "pair_hidden": 16, "proj_dim": 32},  # ~100k
    "small": {"dim": 192, "heads": 8, "layers": 4, "pair_hidden": 32, "proj_dim": 128},  # ~2M
    "base": {"dim": 448, "heads": 8, "layers": 8, "pair_hidden": 64, "proj_dim": 256},  # ~20M
}

#: Approximate parameter targets of the presets (encoder + heads).
SIZE_TARGETS: dict[str, int] = {"tiny": 100_000, "small": 2_000_000, "base": 20_000_000}

#: Features needed to compute the pairwise Lorentz-invariant interaction features.
PAIR_FEATURES: tuple[str, ...] = ("log_pt", "eta", "sin_phi", "cos_phi", "log_e")

#: Definition of the pair features new models are built with (see ``encoder.pair_features``):
#: 2 = ln m² as a sum of non-negative terms of pT, η, φ and the object masses (no float32
#: cancellation; the same value in torch, TorchScript, torch.export and ONNX to rounding).
PAIR_VERSION = 2
#: The definition of models whose ``model_config.json`` predates ``pair_version``:
#: 1 = ln m² from (E1 + E2)² - |p1 + p2|², which cancels in float32 for near-collinear
#: pairs (backends then disagree by up to ~1e-4 in the scores). Such runs keep it.
LEGACY_PAIR_VERSION = 1

#: Features that are not regressed by the masked-object decoder (type is classified).
CONTINUOUS_EXCLUDE: tuple[str, ...] = ("type_id",)


class ModelConfig(HashedConfig):
    """Architecture of the event encoder and its heads."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["tiny", "small", "base", "custom"] = "tiny"
    dim: int = Field(48, ge=8, description="token embedding width")
    heads: int = Field(4, ge=1, description="attention heads")
    layers: int = Field(3, ge=1, description="transformer blocks")
    ffn_ratio: float = Field(4.0, gt=0, description="feed-forward width / dim")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pair_hidden: int = Field(16, ge=1, description="hidden width of the pair-feature MLP")
    pair_features: bool = Field(True, description="add ln dR, ln kT, ln z, ln m2 attention bias")
    pair_version: Literal[1, 2] = Field(
        PAIR_VERSION,
        description="pair-feature definition: 2 stable ln m2 (current), 1 legacy (E2 - p2)",
    )
    pooling: Literal["cls", "attention"] = "cls"
    proj_dim: int = Field(32, ge=2, description="output width of the contrastive projection")
    n_classes: int = Field(2, ge=2, description="classes of the classification head")
    n_truth: int = Field(0, ge=0, description="outputs of the truth-regression head (pretraining)")
    feature_names: list[str] = Field(
        default_factory=lambda: TokenConfig().feature_names, description="token feature order"
    )
    n_types: int = Field(64, ge=1, le=256, description="object-type vocabulary (max type_id+1)")
    token_config_hash: str | None = Field(None, description="hash of the data's token config")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} is not divisible by heads={self.heads}")
        if "type_id" not in self.feature_names:
            raise ValueError("the token features must include 'type_id'")
        if self.pair_features and not set(PAIR_FEATURES) <= set(self.feature_names):
            missing = sorted(set(PAIR_FEATURES) - set(self.feature_names))
            raise ValueError(f"pair_features needs token features {missing}")
        return self

    def canonical_json(self) -> str:
        """Canonical JSON; the legacy ``pair_version`` and a zero ``n_truth`` are left
        out, so a run written before the fields existed keeps its hash (recorded in its
        weights' metadata)."""
        data = self.model_dump(mode="json")
        if data["pair_version"] == LEGACY_PAIR_VERSION:
            del data["pair_version"]
        if data["n_truth"] == 0:
            del data["n_truth"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def continuous_features(self) -> list[str]:
        """Features regressed by the masked-object decoder."""
        return [f for f in self.feature_names if f not in CONTINUOUS_EXCLUDE]


def model_config_for(
    token_config: TokenConfig | None = None, size: str = "tiny", **overrides: Any
) -> ModelConfig:
    """A :class:`ModelConfig` of preset ``size`` matching ``token_config``.

    ``overrides`` replace preset values (e.g. ``dropout=0.1``); any change to the
    architecture of a preset should use ``size="custom"`` to keep names honest.
    """
    token_config = token_config or TokenConfig()
    if size not in SIZES and size != "custom":
        raise ValueError(f"unknown model size {size!r}; choose from {[*SIZES, 'custom']}")
    preset = dict(SIZES.get(size, {}))
    max_type = max(c.type_id for c in token_config.collections)
    values: dict[str, Any] = {
        **preset,
        "size": size,
        "feature_names": token_config.feature_names,
        "n_types": max(max_type + 1, 8),
        "token_config_hash": token_config.hash(),
    }
    values.update(overrides)
    return ModelConfig(**values)


def load_model_config(source: str | Path | dict[str, Any]) -> ModelConfig:
    """The :class:`ModelConfig` of a saved model (a ``model_config.json`` path or its data).

    A config written before ``pair_version`` existed describes a model trained with the
    legacy pair features (:data:`LEGACY_PAIR_VERSION`), and is loaded with them, so an
    old run scores as it always did; its hash is unchanged.
    """
    data = json.loads(Path(source).read_text()) if isinstance(source, str | Path) else source
    if not isinstance(data, dict):
        raise ValueError(f"model config must be a JSON object, got {type(data).__name__}")
    return ModelConfig.model_validate({"pair_version": LEGACY_PAIR_VERSION, **data})


def pair_features_description(config: ModelConfig) -> str:
    """One line for model cards: which pair features the model was trained with."""
    if not config.pair_features:
        return "none"
    how = {
        1: "legacy: ln m² = ln((E1 + E2)² - |p1 + p2|²), float32 cancellation; backends "
        "agree to ~1e-4",
        2: "ln m² without float32 cancellation; every backend agrees to 1e-5",
    }[config.pair_version]
    return f"ln ΔR, ln kT, ln z, ln m², pair_version {config.pair_version} ({how})"
