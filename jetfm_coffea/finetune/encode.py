"""Event embeddings of labelled events for fine-tuning, evaluation and probes (fp32).

One place that turns :class:`~jetfm_coffea.finetune.data.LabelledEvents` rows into
encoder embeddings: the linear probe's cached embeddings, validation and test passes,
and :func:`~jetfm_coffea.finetune.trainer.predict`. Always float32
(:data:`EVAL_PRECISION`), so stored test scores equal a later prediction on any device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from jetfm_coffea.runtime import autocast, matmul_precision
from jetfm_coffea.train.data import compact_batch

if TYPE_CHECKING:
    from jetfm_coffea.finetune.config import TaskConfig
    from jetfm_coffea.finetune.data import LabelledEvents
    from jetfm_coffea.model.model import EventModel

__all__ = ["EVAL_PRECISION", "encode_events", "encode_options"]

#: Validation losses, embeddings and test scores: float32 on every device, so the stored
#: test scores equal :func:`predict` on any device (and across devices within 1e-5).
EVAL_PRECISION = "fp32"


def encode_options(task: TaskConfig) -> dict[str, Any]:
    """The evaluation batch size, precision and token compaction of ``task``."""
    return {
        "batch_size": task.train.eval_batch_size,
        "precision": EVAL_PRECISION,
        "compact": task.train.compact_tokens,
    }


def encode_events(
    model: EventModel,
    data: LabelledEvents,
    index: np.ndarray,
    device: torch.device,
    *,
    batch_size: int = 1024,
    precision: str = "fp32",
    compact: bool = True,
) -> torch.Tensor:
    """Event embeddings of ``data[index]`` (no grad, model in whatever mode it is)."""
    out = []
    bs = batch_size
    with torch.no_grad():
        for i in range(0, len(index), bs):
            sel = index[i : i + bs]
            batch = {
                "tokens": torch.as_tensor(data.tokens[sel]),
                "mask": torch.as_tensor(data.mask[sel]),
            }
            if compact:
                batch = compact_batch(batch)
            with matmul_precision(precision), autocast(precision, device):
                emb = model.encoder(batch["tokens"].to(device), batch["mask"].to(device))
            out.append(emb.embedding.float())
    if not out:
        return torch.zeros(0, model.config.dim, device=device)
    return torch.cat(out)
