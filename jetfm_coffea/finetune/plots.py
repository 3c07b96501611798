"""Figures of fine-tuning studies (matplotlib, mplhep CMS style, PNG).

* :func:`plot_label_efficiency`: a metric vs the number of labels, one line per mode,
  band = seed spread (mean ± standard deviation);
* :func:`plot_roc`: background rejection 1/ε_B vs signal efficiency;
* :func:`plot_scores`: signal-score distributions per true class;
* :func:`plot_confusion`, :func:`plot_calibration`: one model;
* :func:`plot_pred_vs_true`: regression, predicted vs true value, one panel per model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.figures import save_figure, styled, subplots

__all__ = [
    "MODE_COLORS",
    "plot_calibration",
    "plot_confusion",
    "plot_label_efficiency",
    "plot_pred_vs_true",
    "plot_roc",
    "plot_scores",
]

#: Fixed colours so a mode looks the same in every figure.
MODE_COLORS: dict[str, str] = {
    "linear-probe": "#5790fc",
    "finetune": "#e42536",
    "scratch": "#7a21dd",
    "bdt-raw": "#964a8b",
    "bdt-features": "#f89c20",
}

_LABELS = {
    "auc": "AUC (test)",
    "accuracy": "accuracy (test)",
    "rejection_30": r"$1/\varepsilon_B$ at $\varepsilon_S$ = 30%",
    "rejection_50": r"$1/\varepsilon_B$ at $\varepsilon_S$ = 50%",
    "resolution": "resolution: IQR/2 of (pred - true)/true",
    "bias": "bias: median of (pred - true)/true",
    "coverage": r"coverage of $\pm\sigma$ (0.683 expected)",
}


_BOUNDED = ("auc", "accuracy")


def _save(fig: Any, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=80)


def _color(name: str, i: int) -> str:
    return MODE_COLORS.get(name, f"C{i}")


@styled
def plot_label_efficiency(
    aggregate: Sequence[Mapping[str, Any]],
    path: str | Path,
    metrics: Sequence[str] = ("auc", "rejection_50"),
    title: str | None = None,
) -> Path:
    """Metric vs labelled events (log x), one line per mode with a ±1σ seed band.

    Rejections that are lower bounds (``<metric>_capped``) are marked with ▲.

    ``aggregate``: rows with ``mode``, ``n_labels`` and ``<metric>_mean``/``_std``.
    """
    fig, axes = subplots(1, len(metrics), figsize=(8 * len(metrics), 7), squeeze=False)
    modes = list(dict.fromkeys(r["mode"] for r in aggregate))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, mode in enumerate(modes):
            rows = sorted((r for r in aggregate if r["mode"] == mode), key=lambda r: r["n_labels"])
            x = np.array([r["n_labels"] for r in rows], float)
            y = np.array([r[f"{metric}_mean"] for r in rows], float)
            s = np.array([r[f"{metric}_std"] for r in rows], float)
            c = _color(mode, i)
            ax.plot(x, y, marker="o", color=c, label=mode)
            bound = np.array([bool(r.get(f"{metric}_capped")) for r in rows])
            if bound.any():  # no background event passed in some seed: a lower bound
                ax.plot(x[bound], y[bound], ls="none", marker="^", ms=12, color=c)
            lo, hi = y - s, y + s
            if metric in _BOUNDED:
                lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
            ax.fill_between(x, lo, hi, color=c, alpha=0.25, linewidth=0)
        ax.set_xscale("log")
        if metric.startswith("rejection"):
            ax.set_yscale("log")
        ax.set_xlabel("labelled training events")
        ax.set_ylabel(_LABELS.get(metric, metric))
        ax.legend(fontsize=14)
    if title:
        axes[0][0].set_title(title, fontsize=16, loc="left")
    return _save(fig, path)


@styled
def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str | None = None
) -> Path:
    """Background rejection 1/ε_B (log) vs signal efficiency; ``curves``: name -> (ε_B, ε_S)."""
    fig, ax = subplots(figsize=(8, 7))
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        keep = fpr > 0
        mode = name.split(" ")[0]
        ax.plot(tpr[keep], 1.0 / fpr[keep], color=_color(mode, i), label=name)
    ax.plot([0, 1], [1, 1], ls=":", color="grey", label="random")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    ax.legend(fontsize=13)
    if title:
        ax.set_title(title, fontsize=16, loc="left")
    return _save(fig, path)


@styled
def plot_scores(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    signal: int,
    path: str | Path,
    bins: int = 25,
    title: str | None = None,
) -> Path:
    """Signal-probability distributions per true class (unit area), one panel per model.

    ``scores``: panel name -> (probabilities ``[N, K]``, class index ``[N]``).
    """
    import hist
    import mplhep

    n = len(scores)
    fig, axes = subplots(1, n, figsize=(7 * n, 6.5), squeeze=False)
    for ax, (name, (probs, y)) in zip(axes[0], scores.items(), strict=True):
        for c, cname in enumerate(class_names):
            h = hist.Hist.new.Reg(bins, 0, 1, name="score").Double()
            h.fill(score=probs[y == c, signal])
            if h.sum() > 0:
                mplhep.histplot(h / h.sum() / (1 / bins), ax=ax, label=cname, histtype="step")
        ax.set_xlabel(f"p({class_names[signal]})")
        ax.set_ylabel("density")
        ax.set_title(name, fontsize=15, loc="left")
        ax.legend(fontsize=13)
    if title:
        fig.suptitle(title, fontsize=16)
    return _save(fig, path)


@styled
def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str | None = None
) -> Path:
    """Confusion matrix normalised per true class (row), with counts annotated."""
    k = len(class_names)
    fig, ax = subplots(figsize=(2.2 * k + 4, 2.0 * k + 3))
    rows = matrix.sum(1, keepdims=True)
    frac = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            color = "white" if frac[i, j] > 0.6 else "black"
            text = f"{frac[i, j]:.2f}\n({matrix[i, j]})"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=13)
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title, fontsize=16, loc="left")
    return _save(fig, path)


@styled
def plot_calibration(
    cal: Mapping[str, Any], signal_name: str, path: str | Path, title: str | None = None
) -> Path:
    """Reliability diagram of the signal probability, Brier score in the legend."""
    fig, ax = subplots(figsize=(8, 7))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfectly calibrated")
    ax.plot(
        cal["mean_predicted"],
        cal["fraction_positive"],
        marker="o",
        label=f"model (Brier {cal['brier']:.3f})",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"mean predicted p({signal_name})")
    ax.set_ylabel(f"fraction of {signal_name}")
    ax.legend(fontsize=13)
    if title:
        ax.set_title(title, fontsize=16, loc="left")
    return _save(fig, path)


@styled
def plot_pred_vs_true(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    target: str,
    path: str | Path,
    bins: int = 30,
    title: str | None = None,
) -> Path:
    """2D histogram of predicted vs true value (diagonal = perfect), one panel per model.

    ``panels``: name -> (predicted ``[N]``, true ``[N]``); the axes share the range of
    the true values' 1st-99th percentiles.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(7 * n, 6.5), squeeze=False)
    truth = np.concatenate([np.asarray(y, float) for _, y in panels.values()])
    lo, hi = np.percentile(truth, [1, 99]) if len(truth) else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    for ax, (name, (pred, y)) in zip(axes[0], panels.items(), strict=True):
        counts, _, _ = np.histogram2d(np.asarray(y, float), np.asarray(pred, float), [edges] * 2)
        ax.pcolormesh(edges, edges, counts.T, cmap="Blues")
        ax.plot([lo, hi], [lo, hi], ls=":", color="grey")
        ax.set_xlabel(f"true {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.set_title(name, fontsize=15, loc="left")
    if title:
        fig.suptitle(title, fontsize=16)
    return _save(fig, path)
