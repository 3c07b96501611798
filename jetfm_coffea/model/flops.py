"""Useful floating-point operations of the encoder and its pretraining heads, by hand.

Model FLOP utilisation (MFU) is *useful* work over the machine's matmul rate, so the
work is counted from the model config and each event's real token count, never from
the padded shapes a batch happened to run with:

* a linear layer ``d_in -> d_out`` on ``n`` rows is ``2 n d_in d_out`` FLOPs (the
  multiply-adds of its matrix product; bias, norms, activations and softmax are not
  counted, the usual MFU convention);
* attention over ``T`` tokens of width ``d`` is ``4 T^2 d`` (``Q K^T`` and ``A V``);
* the pair-feature MLP runs on the ``t^2`` pairs of the ``t`` valid objects;
* a training step is 3x the forward (the backward computes the gradients of the inputs
  and of the weights, each as many FLOPs as the forward).

``T = t + 1`` with a class token (``pooling: cls``). :func:`encoder_forward_flops` is
checked against ``torch.utils.flop_counter`` on unpadded batches (tests/test_flops.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jetfm_coffea.model.config import ModelConfig

__all__ = [
    "TRAIN_FACTOR",
    "encoder_forward_flops",
    "heads_forward_flops",
    "pretrain_flops_per_event",
]

#: Training FLOPs per forward FLOP: forward + backward (input and weight gradients).
TRAIN_FACTOR = 3.0


def encoder_forward_flops(config: ModelConfig, n_tokens: Any) -> np.ndarray:
    """Forward matmul FLOPs of the encoder on events of ``n_tokens`` valid objects.

    ``n_tokens``: an int or an array of per-event counts; returns float64 of its shape.
    """
    t = np.asarray(n_tokens, np.float64)
    d = config.dim
    n_cont = len(config.continuous_features)
    hidden = int(d * config.ffn_ratio)
    embed = 2 * t * (n_cont * d + d * d)
    pairs = 0.0
    if config.pair_features:
        ph = config.pair_hidden
        pairs = 2 * t * t * (4 * ph + ph * config.heads)
    big_t = t + 1 if config.pooling == "cls" else t
    per_layer = 2 * big_t * (3 * d * d + d * d + 2 * d * hidden) + 4 * big_t * big_t * d
    pool = 0.0
    if config.pooling == "attention":  # one query: q/out projections, k/v of every token
        pool = 2 * (2 * d * d) + 2 * big_t * 2 * d * d + 4 * big_t * d
    return embed + pairs + config.layers * per_layer + pool


def heads_forward_flops(
    config: ModelConfig, heads: Sequence[str], n_tokens: Any, n_views: int = 0
) -> np.ndarray:
    """Forward matmul FLOPs of the pretraining heads per event.

    ``projection``: the contrastive MLP on each of ``n_views`` view embeddings;
    ``decoder``: the masked-object decoder on the ``n_tokens`` valid tokens of the copy;
    ``classifier``: the supervised head on one embedding. Other heads count 0.
    """
    t = np.asarray(n_tokens, np.float64)
    d = config.dim
    out = np.zeros_like(t)
    for name in heads:
        if name == "projection":
            out = out + n_views * 2 * (d * d + d * config.proj_dim)
        elif name == "decoder":
            n_cont = len(config.continuous_features)
            out = out + 2 * t * (d * d + d * (n_cont + config.n_types))
        elif name == "classifier":
            out = out + 2 * d * config.n_classes
    return out


def pretrain_flops_per_event(
    config: ModelConfig,
    token_counts: Any,
    view_counts: Any | None = None,
    heads: Sequence[str] = ("projection", "decoder"),
) -> float:
    """Mean useful training FLOPs per event (forward + backward).

    ``token_counts`` ``[B]``: valid objects of each event (its masked copy goes through
    the encoder); ``view_counts`` ``[B, V]``: valid objects of each of its ``V`` views
    (None: no contrastive views). Heads as in :func:`heads_forward_flops`.
    """
    t = np.asarray(token_counts, np.float64)
    fwd = encoder_forward_flops(config, t)
    n_views = 0
    if view_counts is not None:
        v = np.asarray(view_counts, np.float64)
        n_views = v.shape[1]
        fwd = fwd + encoder_forward_flops(config, v).sum(axis=1)
    fwd = fwd + heads_forward_flops(config, heads, t, n_views)
    return float(TRAIN_FACTOR * fwd.mean())
