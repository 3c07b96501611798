"""Packing tokens for the encoder: cut every batch to the width its events need.

The encoder ignores padding and is permutation-invariant over tokens, so the token axis
of a batch can be cut to its longest event (and valid tokens moved first) without
changing any output, only the cost. This module is the one implementation of that idea:

* :func:`event_lengths` -- an event's length is its last valid slot + 1 (valid tokens
  come first in shards and in :func:`~jetfm_coffea.tokens.build_tokens`; a token masked
  for non-finite features leaves a hole, which is kept). numpy or torch.
* :func:`pack_tokens` / :func:`packed_width` -- move valid tokens first and cut to the
  batch's longest event rounded up to a multiple (training: ``compact_batch``).
* :func:`length_groups` -- events grouped by rounded length, for the encoder's grouped
  forward (training and fine-tuning with ``group_tokens``).
* :func:`length_batches` -- the scorer's micro-batches: one group per exact length, cut
  at the batch size, so no padding is computed (in-process torch, ONNX Runtime, and the
  exported model behind Triton, whose token axis is dynamic for that reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = [
    "event_lengths",
    "length_batches",
    "length_groups",
    "pack_tokens",
    "packed_width",
]


def event_lengths(mask: Any) -> Any:
    """Length of every event of ``mask`` ``[B, T]``: last valid slot + 1 (0 if empty).

    numpy in, numpy out (int64); torch in, torch out (long, same device).
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.bool()
        b, t = mask.shape
        if t == 0:
            return torch.zeros(b, dtype=torch.long, device=mask.device)
        slots = torch.arange(1, t + 1, device=mask.device)
        return (mask * slots).amax(dim=1)
    mask = np.asarray(mask, bool)
    if mask.shape[1] == 0:
        return np.zeros(len(mask), np.int64)
    last = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), last, 0).astype(np.int64)


def packed_width(masks: list[torch.Tensor], width: int, multiple: int = 4) -> int:
    """Token width for packed batches: the most valid tokens of any event in ``masks``
    rounded up to ``multiple``, at least ``multiple`` and at most ``width``."""
    longest = max((int(m.sum(-1).max()) if m.numel() else 0) for m in masks)
    return min(width, max(multiple, -(-longest // multiple) * multiple))


def pack_tokens(
    x: torch.Tensor, mask: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [..., T, F]`` and ``mask [..., T]`` with valid tokens first (stable order), cut
    to ``width`` slots (at least the longest event's valid-token count)."""
    order = torch.argsort((~mask.bool()).to(torch.int8), dim=-1, stable=True)[..., :width]
    packed = torch.take_along_dim(x, order[..., None], dim=-2)
    return packed, torch.take_along_dim(mask, order, dim=-1)


def length_groups(mask: torch.Tensor, multiple: int = 4) -> list[tuple[torch.Tensor, int]]:
    """``[(event indices, width)]``: events grouped by length rounded up to ``multiple``.

    The length is :func:`event_lengths` (a hole left by a masked token is kept). Empty
    events go with the narrowest group. One host synchronisation per call.
    """
    t = mask.shape[1]
    length = event_lengths(mask)
    width = ((length + multiple - 1) // multiple * multiple).clamp(min(multiple, t), t)
    values = torch.unique(width).tolist()
    return [(torch.nonzero(width == w).flatten(), int(w)) for w in values]


def length_batches(
    mask: np.ndarray, batch_size: int, select: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, int]]:
    """The scorer's micro-batches ``(event indices, width)``: one group per event length
    (of the events in ``select``, a boolean array, default all), each cut at
    ``batch_size``; ``width`` is that length (at least 1, so an empty event still has
    one, masked, slot)."""
    length = event_lengths(mask)
    chosen = np.ones(len(length), bool) if select is None else np.asarray(select, bool)
    for t in np.unique(length[chosen]):
        idx = np.flatnonzero(chosen & (length == t))
        for start in range(0, len(idx), batch_size):
            yield idx[start : start + batch_size], max(int(t), 1)
