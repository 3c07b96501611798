"""TEMPORARY identity stand-in for the augmentation module (``jetfm_coffea.augment``).

!!! Stand-in only: used by :mod:`jetfm_coffea.shards.views` while the real augmentation
module is not merged. Every "view" it makes is the unaugmented event (features recomputed
from the objects, so the cost of the token kernel is real, the physics transform is not).
Delete this file when ``jetfm_coffea.augment`` lands.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jetfm_coffea.tokens import EventObjects, EventTokens, TokenConfig, compute_features

__all__ = ["StandInPipeline", "augment_torch", "make_views"]


class StandInPipeline(BaseModel):
    """Stand-in augmentation config: ``views`` identity views from ``seed`` (extra keys kept)."""

    model_config = ConfigDict(extra="allow")

    views: int = Field(2, ge=0, le=64)
    seed: int = 0

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def make_views(
    objects: EventObjects, pipeline: StandInPipeline, token_config: TokenConfig
) -> list[EventTokens]:
    """``pipeline.views`` identity views (stand-in)."""
    return [EventTokens.from_objects(objects, token_config) for _ in range(pipeline.views)]


def augment_torch(
    batch_objects: dict[str, Any],
    pipeline: StandInPipeline,
    token_config: TokenConfig,
    view: int,
    ids: dict[str, Any],
) -> tuple[Any, Any]:
    """Identity view of padded torch tensors (stand-in): ``(tokens [B,T,F], mask [B,T])``."""
    import torch

    kin = {k: batch_objects[k].to(torch.float32) for k in ("pt", "eta", "phi", "mass")}
    rest = {k: batch_objects[k].to(torch.float32) for k in ("charge", "btag", "type_id")}
    tokens, mask, _ = compute_features(
        torch, token_config.feature_names, **kin, **rest, mask=batch_objects["mask"]
    )
    return tokens.to(torch.float32), mask
