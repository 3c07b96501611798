"""How shards get their augmented views: the interface to the augmentation module.

The augmentations sit one layer below the shards (``pyproject.toml``
``[tool.importlinter]``), so this module imports them as any module imports a layer
below. The shard writer needs one entry point of ``jetfm_coffea.augment``,
``augment_objects(objects, pipeline, token_config, view) -> EventObjects`` (numpy, seeded
per event by (seed, run, lumi, event, view)), and a pydantic pipeline config with
``views``, ``seed`` and ``hash()``. Fresh views for pretraining are made on the training
device by :func:`jetfm_coffea.train.views.make_views`.
:func:`load_augmentation` resolves the ``augment:`` section of a build config into such a
pipeline.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from jetfm_coffea.augment import AugmentationPipeline, augment_objects
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import EventObjects, TokenConfig

__all__ = [
    "AugmentationPipelineLike",
    "load_augmentation",
    "pipeline_document",
    "stored_views",
]


@runtime_checkable
class AugmentationPipelineLike(Protocol):
    """What the shard code needs of an augmentation pipeline config."""

    views: int
    seed: int

    def hash(self) -> str: ...

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


def load_augmentation(source: Any) -> AugmentationPipelineLike | None:
    """Resolve an ``augment:`` config section (dict), a pipeline, or None (no views)."""
    if source is None:
        return None
    if isinstance(source, AugmentationPipelineLike) and not isinstance(source, dict):
        return source
    if not isinstance(source, dict):
        raise ConfigError(f"augment: expected a mapping, got {type(source).__name__}")
    cls = AugmentationPipeline
    try:
        pipeline = cls.model_validate(source)
    except Exception as err:  # pydantic.ValidationError
        raise ConfigError(f"invalid augment config: {err}") from err
    return pipeline if pipeline.views > 0 else None


def pipeline_document(pipeline: AugmentationPipelineLike | None) -> dict[str, Any]:
    """The provenance record of a pipeline (``augmentation`` in shard attributes)."""
    if pipeline is None:
        return {"pipeline": None, "hash": None, "seed": None, "n_views": 0}
    return {
        "pipeline": pipeline.model_dump(mode="json"),
        "hash": pipeline.hash(),
        "seed": int(pipeline.seed),
        "n_views": int(pipeline.views),
    }


def stored_views(
    objects: EventObjects, pipeline: AugmentationPipelineLike | None, token_config: TokenConfig
) -> list[EventObjects]:
    """The pipeline's V views of ``objects`` for a shard (numpy; no pipeline: no views).

    View ``v`` of an event is keyed by (seed, run, luminosityBlock, event, v): the same
    numbers as fresh view ``v`` of epoch 0 in pretraining.
    """
    if pipeline is None:
        return []
    return [augment_objects(objects, pipeline, token_config, v) for v in range(pipeline.views)]
