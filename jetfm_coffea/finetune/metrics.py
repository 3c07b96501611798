"""Classifier metrics (scikit-learn): AUC, accuracy, background rejection, confusion, calibration;
and regression metrics (:func:`regression_metrics`: resolution, bias, coverage).

Scores are class probabilities ``[N, K]``; the *signal* class is scored against all
others (for a binary task that is the usual signal-vs-background ROC). Background
rejection ``1/ε_B`` at a signal efficiency is read off the ROC curve by linear
interpolation; when no background event passes, ``ε_B`` is floored at
``1 / n_background`` and the value is flagged as a lower bound (``*_capped``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "EFFICIENCIES",
    "background_rejection",
    "calibration",
    "classification_metrics",
    "confusion",
    "regression_metrics",
    "roc",
]

#: Signal efficiencies at which the background rejection is reported.
EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)


def roc(
    probs: np.ndarray, y: np.ndarray, signal: int, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(ε_B, ε_S)`` = (false, true positive rate) of the signal-vs-rest ROC curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y == signal, probs[:, signal], sample_weight=weight)
    return fpr, tpr


def background_rejection(
    fpr: np.ndarray, tpr: np.ndarray, efficiency: float, n_background: int
) -> tuple[float, bool]:
    """``(1/ε_B at ε_S = efficiency, capped)``; capped: ε_B was floored at 1/n_background."""
    eps_b = float(np.interp(efficiency, tpr, fpr))
    floor = 1.0 / max(n_background, 1)
    return 1.0 / max(eps_b, floor), eps_b < floor


def confusion(probs: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (rows: true class, columns: predicted class), event counts."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, probs.argmax(1), labels=list(range(n_classes)))


def calibration(probs: np.ndarray, y: np.ndarray, signal: int, n_bins: int = 10) -> dict[str, Any]:
    """Reliability curve of the signal probability (uniform bins) and its Brier score."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    truth = (y == signal).astype(int)
    p = np.clip(probs[:, signal], 0.0, 1.0)
    frac_pos, mean_pred = calibration_curve(truth, p, n_bins=n_bins, strategy="uniform")
    counts, _ = np.histogram(p, bins=n_bins, range=(0.0, 1.0))
    return {
        "mean_predicted": mean_pred.tolist(),
        "fraction_positive": frac_pos.tolist(),
        "bin_counts": counts.tolist(),
        "brier": float(brier_score_loss(truth, p)),
    }


def classification_metrics(
    probs: np.ndarray,
    y: np.ndarray,
    signal: int,
    class_names: list[str] | None = None,
    efficiencies: tuple[float, ...] = EFFICIENCIES,
) -> dict[str, Any]:
    """AUC (signal vs rest; plus one-vs-rest macro AUC for K > 2), accuracy, log loss,
    background rejection at each signal efficiency, per-class counts."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    probs = probs / probs.sum(1, keepdims=True)
    y = np.asarray(y)
    k = probs.shape[1]
    names = class_names or [str(i) for i in range(k)]
    is_sig = y == signal
    out: dict[str, Any] = {
        "n_events": len(y),
        "n_per_class": {names[c]: int((y == c).sum()) for c in range(k)},
        "signal": names[signal],
        "accuracy": float(accuracy_score(y, probs.argmax(1))),
        "auc": float(roc_auc_score(is_sig, probs[:, signal])),
        "log_loss": float(log_loss(y, probs, labels=list(range(k)))),
    }
    if k > 2:
        present = sorted(set(y.tolist()))
        if len(present) == k:
            out["auc_ovr_macro"] = float(roc_auc_score(y, probs, multi_class="ovr"))
    fpr, tpr = roc(probs, y, signal)
    n_bkg = int((~is_sig).sum())
    for eff in efficiencies:
        key = f"rejection_{round(eff * 100)}"
        out[key], out[f"{key}_capped"] = background_rejection(fpr, tpr, eff, n_bkg)
    return out


def regression_metrics(pred: np.ndarray, sigma: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Resolution, bias and width coverage of predictions ``pred`` ± ``sigma`` of ``y``.

    ``resolution``: interquartile half-width of ``(pred - y) / y`` (robust to tails; the
    standard deviation of a Gaussian is 1.35 times it); ``bias``: the median of
    ``(pred - y) / y``; ``coverage``: the fraction of events with ``|pred - y| < sigma``
    (0.683 for a calibrated Gaussian width); ``rmse``/``mae`` in the target's units.
    Events with ``y == 0`` are left out of the relative numbers.
    """
    pred, sigma, y = (np.asarray(a, np.float64) for a in (pred, sigma, y))
    nonzero = y != 0
    rel = (pred[nonzero] - y[nonzero]) / y[nonzero]
    q25, q50, q75 = np.percentile(rel, [25, 50, 75]) if len(rel) else (np.nan,) * 3
    err = pred - y
    return {
        "n_events": len(y),
        "resolution": float((q75 - q25) / 2),
        "bias": float(q50),
        "mean_relative_error": float(rel.mean()) if len(rel) else float("nan"),
        "coverage": float(np.mean(np.abs(err) < sigma)) if len(y) else float("nan"),
        "median_sigma_relative": float(np.median(sigma[nonzero] / np.abs(y[nonzero])))
        if len(rel)
        else float("nan"),
        "rmse": float(np.sqrt(np.mean(err**2))) if len(y) else float("nan"),
        "mae": float(np.mean(np.abs(err))) if len(y) else float("nan"),
    }
