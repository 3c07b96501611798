"""Loss curves of a run directory (``jetfm plot-training``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.figures import cms_style, save_figure, subplots
from jetfm_coffea.train.pretrain_run import read_metrics

__all__ = ["plot_run"]

_SKIP = {"step", "epoch", "time", "lr", "grad_norm", "events_per_s", "step_time_s"}
_MONITORS = ("emb_std", "eff_rank", "knn_acc")


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Plot losses (left) and representation monitors (right); returns the PNG path."""
    records = read_metrics(Path(run_dir))
    loss_keys = sorted(
        {
            k
            for r in records
            for k in r
            if k not in _SKIP
            and k not in _MONITORS
            and k not in ("loader_wait_frac", "events_seen")
        }
    )
    if not records or "loss" not in loss_keys:
        raise TrainingError(f"{run_dir}: metrics.jsonl holds no logged loss")
    with cms_style():
        fig, (ax, ax2) = subplots(1, 2, figsize=(16, 6.5))
        _draw(ax, ax2, records, loss_keys)
        path = Path(out) if out else Path(run_dir) / "loss.png"
        return save_figure(fig, path, dpi=80)


def _draw(ax: Any, ax2: Any, records: list[dict], loss_keys: list[str]) -> None:
    for key in loss_keys:
        pts = [(r["step"], r[key]) for r in records if key in r]
        ax.plot(*zip(*pts, strict=True), label=key, lw=2 if key == "loss" else 1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=12)
    for key in _MONITORS:
        pts = [(r["step"], r[key]) for r in records if key in r]
        if pts:
            ax2.plot(*zip(*pts, strict=True), marker="o", label=key)
    ax2.set_xlabel("step")
    ax2.set_yscale("log")
    ax2.set_ylabel("monitor")
    ax2.legend(fontsize=12)
