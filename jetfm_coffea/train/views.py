"""Views of a batch for the contrastive objective: fresh physics views made on the device.

:func:`make_views` (the package's one function of that name) applies an augmentation
pipeline (``PretrainConfig.augment``; default the standard pipeline: rotations, z and
transverse boosts, η reflection, smearing, object dropout) to the raw objects of a
batch with the torch kernels of :mod:`jetfm_coffea.augment`, on the batch's device, and
computes the token features of every view with the one token path. View ``v`` of an
event in epoch ``e`` is keyed by (pipeline seed, run, luminosityBlock, event,
``e * VIEW_STRIDE + v``): a pure function of the event and the epoch, so views differ
between epochs, do not depend on batch composition, chunking, ranks or workers, and a
resumed run sees the same views. Epoch 0 views ``0 .. V-1`` are the views a store
built with the same pipeline holds (``views: N`` in the build config).

:func:`jitter_views` is the former toy hook (token dropout plus Gaussian jitter of the
features), kept only as an explicit option: ``train.view_hook:
jetfm_coffea.train.views:jitter_views``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch

from jetfm_coffea.augment import AugmentationPipeline, augment_tensors, load_pipeline
from jetfm_coffea.errors import TrainingError
from jetfm_coffea.tokens.config import FEATURES, TokenConfig
from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS

__all__ = [
    "OBJECT_KEYS",
    "VIEW_STRIDE",
    "ViewHook",
    "jitter_views",
    "load_view_hook",
    "make_views",
    "sibling_views",
    "view_index",
]

#: ``(batch, n_views, generator) -> (views [B,V,T,F], view_mask [B,V,T])``
ViewHook = Callable[[dict, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

#: Columns of ``batch["objects"]`` (the shard format's object columns).
OBJECT_KEYS = OBJECT_FIELDS
#: View indices reserved per epoch (at least the most views an objective may ask for).
VIEW_STRIDE = 8

_JITTER = {"log_pt": 0.05, "eta": 0.02, "log_e": 0.05, "log_m": 0.05}


def view_index(epoch: int, view: int) -> int:
    """The augmentation view index of view ``view`` in epoch ``epoch``."""
    if not 0 <= view < VIEW_STRIDE:
        raise TrainingError(f"at most {VIEW_STRIDE} views per event, asked for view {view}")
    return int(epoch) * VIEW_STRIDE + int(view)


def make_views(
    batch: dict[str, torch.Tensor],
    pipeline: AugmentationPipeline | dict[str, Any],
    token_config: TokenConfig,
    epoch: int,
    n_views: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_views`` fresh physics views of every event of ``batch``, on its device.

    ``batch`` holds ``objects`` float32 ``[B, T, 7]`` (:data:`OBJECT_KEYS`), ``mask``
    ``[B, T]`` and the ids ``run``, ``luminosityBlock``, ``event`` ``[B]``. Returns
    ``(views [B, V, T, F] float32, view_mask [B, V, T] bool)``, padded to the batch's
    width ``T`` (augmentations never add objects).
    """
    if "objects" not in batch:
        raise TrainingError(
            "fresh views need the raw objects of the batch (batch key 'objects'): open the "
            "shards with load_objects=True, or use views: stored"
        )
    pipeline = load_pipeline(pipeline)
    objects = batch["objects"].float()
    kin = dict(zip(OBJECT_KEYS, objects.unbind(-1), strict=True))
    inputs = {**kin, "mask": batch["mask"].bool()}
    inputs.update({k: batch[k] for k in ID_FIELDS})
    views, masks = [], []
    for v in range(n_views):
        out = augment_tensors(inputs, pipeline, token_config, view_index(epoch, v))
        views.append(out["tokens"].to(torch.float32))
        masks.append(out["mask"])
    return torch.stack(views, 1), torch.stack(masks, 1)


def sibling_views(
    batch: dict[str, torch.Tensor],
    pipeline: AugmentationPipeline | dict[str, Any],
    token_config: TokenConfig,
    epoch: int,
    n_views: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_views`` fresh physics views of the re-simulated siblings (``views:
    resim+physics``): view ``v`` is a physics view of copy ``v % K``, made by
    :func:`make_views` from ``batch["view_objects"]`` ``[B, K, T, 7]`` and keyed by the
    copy's own event number (``view_event`` ``[B, K]``), so the positives of an event
    differ both by the shower and by the physics augmentations.
    """
    if "view_objects" not in batch:
        raise TrainingError(
            "views: resim+physics needs the raw objects of the siblings (batch key "
            "'view_objects'): open the store with the resim loader and load_objects=True"
        )
    objects, mask = batch["view_objects"], batch["view_mask"].bool()
    b, k, t, _ = objects.shape
    per_copy = -(-n_views // k)
    flat = {
        "objects": objects.reshape(b * k, t, -1),
        "mask": mask.reshape(b * k, t),
        "run": batch["run"].repeat_interleave(k),
        "luminosityBlock": batch["luminosityBlock"].repeat_interleave(k),
        "event": batch["view_event"].reshape(-1),
    }
    views, view_mask = make_views(flat, pipeline, token_config, epoch, per_copy)
    views = views.reshape(b, k, per_copy, t, -1).transpose(1, 2).reshape(b, per_copy * k, t, -1)
    view_mask = view_mask.reshape(b, k, per_copy, t).transpose(1, 2).reshape(b, per_copy * k, t)
    return views[:, :n_views].contiguous(), view_mask[:, :n_views].contiguous()


def jitter_views(
    batch: dict[str, torch.Tensor],
    n_views: int,
    generator: torch.Generator,
    *,
    feature_names: list[str] | None = None,
    drop_prob: float = 0.15,
    phi_sigma: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Toy views: ``n_views`` randomly perturbed copies of ``batch["tokens"]`` (explicit option).

    Each valid token is dropped with probability ``drop_prob`` (an event keeps at least
    its leading token); log_pt/eta/log_e/log_m get Gaussian noise and φ is rotated by a
    small per-token angle (sin/cos stay consistent). Padding stays zero. Not a physics
    symmetry: use :func:`make_views` unless comparing against it.
    """
    tokens, mask = batch["tokens"], batch["mask"].bool()
    names = feature_names or batch.get("feature_names") or _default_names(tokens.shape[-1])
    b, t, f = tokens.shape
    dev = tokens.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=generator.device).to(dev)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=generator.device).to(dev)

    views = tokens[:, None].expand(b, n_views, t, f).clone()
    keep = mask[:, None].expand(b, n_views, t) & (rand(b, n_views, t) >= drop_prob)
    first = mask.float().argmax(dim=1)  # first valid token (0 when the event is empty)
    has_any = mask.any(dim=1)
    keep[torch.arange(b, device=dev), :, first] |= has_any[:, None]
    idx = {n: i for i, n in enumerate(names)}
    for name, sigma in _JITTER.items():
        if name in idx:
            views[..., idx[name]] += sigma * randn(b, n_views, t)
    if "sin_phi" in idx and "cos_phi" in idx:
        s, c = views[..., idx["sin_phi"]], views[..., idx["cos_phi"]]
        a = phi_sigma * math.sqrt(2.0) * randn(b, n_views, t)
        sa, ca = torch.sin(a), torch.cos(a)
        views[..., idx["sin_phi"]], views[..., idx["cos_phi"]] = s * ca + c * sa, c * ca - s * sa
    views = views * keep[..., None].to(views.dtype)
    return views, keep


def _default_names(n_features: int) -> list[str]:
    if n_features != len(FEATURES):
        raise ValueError("jitter_views needs feature_names for a non-default token layout")
    return list(FEATURES)


def load_view_hook(path: str) -> ViewHook:
    """Import ``module:function``."""
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"view hook {path!r} must be 'module:function'")
    return getattr(importlib.import_module(module), attr)
