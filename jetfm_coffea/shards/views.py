"""How shards get their augmented views: the interface to the augmentation module.

The shard writer and the loader only need two entry points of ``jetfm_coffea.augment``:

``make_views(objects, pipeline, token_config) -> list[EventTokens]``
    K views per event (numpy), each seeded per event by (seed, run, lumi, event, view).
``augment_tensors(batch, pipeline, token_config, view) -> dict``
    one fresh view of padded torch tensors, for on-the-fly augmentation in the loader.

and a pydantic pipeline config with ``views``, ``seed`` and ``hash()``.
:func:`load_augmentation` resolves the ``augment:`` section of a build config into such a
pipeline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import EventObjects, EventTokens, TokenConfig

__all__ = [
    "AugmentationPipelineLike",
    "TorchAugmentHook",
    "augment_torch",
    "augmentation_backend",
    "load_augmentation",
    "make_views",
    "pipeline_document",
    "torch_hook",
]


@runtime_checkable
class AugmentationPipelineLike(Protocol):
    """What the shard code needs of an augmentation pipeline config."""

    views: int
    seed: int

    def hash(self) -> str: ...

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


#: On-the-fly augmentation in the loader: ``hook(objects, view, ids) -> (tokens, mask)``.
TorchAugmentHook = Callable[[dict[str, Any], int, dict[str, Any]], tuple[Any, Any]]


def augmentation_backend() -> Any:
    """The module providing ``AugmentationPipeline``, ``make_views``, ``augment_tensors``."""
    return importlib.import_module("jetfm_coffea.augment")


def _pipeline_class(backend: Any) -> type:
    return backend.AugmentationPipeline


def load_augmentation(source: Any) -> AugmentationPipelineLike | None:
    """Resolve an ``augment:`` config section (dict), a pipeline, or None (no views)."""
    if source is None:
        return None
    if isinstance(source, AugmentationPipelineLike) and not isinstance(source, dict):
        return source
    if not isinstance(source, dict):
        raise ConfigError(f"augment: expected a mapping, got {type(source).__name__}")
    cls = _pipeline_class(augmentation_backend())
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


def make_views(
    objects: EventObjects, pipeline: AugmentationPipelineLike | None, token_config: TokenConfig
) -> list[EventTokens]:
    """The pipeline's K views of ``objects`` (no pipeline: no views)."""
    if pipeline is None:
        return []
    return list(augmentation_backend().make_views(objects, pipeline, token_config))


def augment_torch(
    batch_objects: dict[str, Any],
    pipeline: AugmentationPipelineLike,
    token_config: TokenConfig,
    view: int,
    ids: dict[str, Any],
) -> tuple[Any, Any]:
    """One on-the-fly view of a padded torch batch: ``(tokens [B,T,F], mask [B,T])``."""
    backend = augmentation_backend()
    out = backend.augment_tensors({**batch_objects, **ids}, pipeline, token_config, view)
    return out["tokens"].float(), out["mask"]


class _PipelineHook:
    """Picklable on-the-fly hook bound to a pipeline and token config."""

    def __init__(self, pipeline: AugmentationPipelineLike, token_config: TokenConfig):
        self.pipeline = pipeline
        self.token_config = token_config
        self.views = int(pipeline.views)

    def __call__(self, objects: dict[str, Any], view: int, ids: dict[str, Any]) -> tuple[Any, Any]:
        return augment_torch(objects, self.pipeline, self.token_config, view, ids)


def torch_hook(pipeline: AugmentationPipelineLike, token_config: TokenConfig) -> TorchAugmentHook:
    """A loader hook applying ``pipeline`` on the fly (``hook.views`` views per event)."""
    return _PipelineHook(pipeline, token_config)
