"""On-the-fly views for the contrastive objective when the batch carries none.

``make_views`` is the hook (``LoopConfig.view_hook``, a ``module:function`` path);
the physics augmentations in ``jetfm_coffea.augment`` replace it by the same
signature. This default is deliberately simple: random token dropout and a small
Gaussian jitter of the continuous kinematic features.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import torch

__all__ = ["ViewHook", "load_view_hook", "make_views"]

#: ``(batch, n_views, generator) -> (views [B,V,T,F], view_mask [B,V,T])``
ViewHook = Callable[[dict, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

_JITTER = {"log_pt": 0.05, "eta": 0.02, "log_e": 0.05, "log_m": 0.05}


def make_views(
    batch: dict[str, torch.Tensor],
    n_views: int,
    generator: torch.Generator,
    *,
    feature_names: list[str] | None = None,
    drop_prob: float = 0.15,
    phi_sigma: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_views`` randomly perturbed copies of ``batch["tokens"]``.

    Each valid token is dropped with probability ``drop_prob`` (an event keeps at least
    its leading token); log_pt/eta/log_e/log_m get Gaussian noise and φ is rotated by a
    small per-token angle (sin/cos stay consistent). Padding stays zero.
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
    from jetfm_coffea.tokens.config import FEATURES

    if n_features != len(FEATURES):
        raise ValueError("make_views needs feature_names for a non-default token layout")
    return list(FEATURES)


def load_view_hook(path: str) -> ViewHook:
    """Import ``module:function``."""
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"view hook {path!r} must be 'module:function'")
    return getattr(importlib.import_module(module), attr)
