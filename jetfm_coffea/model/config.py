"""Model configuration: size presets (``tiny``/``small``/``base``) and the token interface.

The model reads its input layout (feature names, number of object types) from the
:class:`~jetfm_coffea.tokens.TokenConfig` the data was built with, so a model can
never silently be fed tokens with a different feature order.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from jetfm_coffea.config_base import HashedConfig
from jetfm_coffea.tokens.config import TokenConfig

__all__ = [
    "CONTINUOUS_EXCLUDE",
    "PAIR_FEATURES",
    "SIZES",
    "ModelConfig",
    "model_config_for",
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
    pooling: Literal["cls", "attention"] = "cls"
    proj_dim: int = Field(32, ge=2, description="output width of the contrastive projection")
    n_classes: int = Field(2, ge=2, description="classes of the classification head")
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
