"""Independent re-computations that the tests compare the package's metrics with.

Deliberately not the package's code path (sklearn): the AUC here is the Mann-Whitney
statistic counted pair by pair, so an inverted score, a wrong signal column, labels
shuffled against the scores or an AUC taken on other events than the stored test
events all show up as a mismatch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pairwise_auc", "run_auc"]


def pairwise_auc(score: np.ndarray, is_signal: np.ndarray) -> float:
    """P(score of a signal event > score of a background event), ties counting one half."""
    score = np.asarray(score, np.float64)
    is_signal = np.asarray(is_signal, bool)
    s, b = score[is_signal][:, None], score[~is_signal][None, :]
    return float(((s > b).sum() + 0.5 * (s == b).sum()) / (s.size * b.size))


def run_auc(run_dir: str | Path, signal: int) -> float:
    """The AUC of a run's stored test scores (``test_scores.npz``), signal class ``signal``."""
    with np.load(Path(run_dir) / "test_scores.npz") as z:
        probs, target = z["probs"], z["target"]
    return pairwise_auc(probs[:, signal] / probs.sum(1), target == signal)
