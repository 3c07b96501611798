"""AUC intervals of a label-efficiency study: paired bootstrap over the test events,
combined with the spread over seeds.

Every cell of a study scores the same test events (one test set per task, identified
by its hash), so the test-set part of an uncertainty is estimated by resampling the
test events once and scoring every cell on the same resamples (a *paired* bootstrap):
a difference between two models is computed replicate by replicate, so the part of the
test-set noise both models share cancels.  The resampling is stratified (signal and
background events are resampled separately, so every replicate has the test set's class
counts) and done with multinomial event weights, so a replicate's AUC costs one pass
over the sorted scores.

The seed part: each seed draws its own training events and initialisation; the mean
over ``S`` seeds has the standard error ``sd / sqrt(S)`` and a Student-t quantile with
``S - 1`` degrees of freedom.  For a difference of two rows trained on the same seeds
(same label fraction: the same training events per seed) the per-seed differences are
used; otherwise the two standard errors are combined (Welch).  The two parts add in
quadrature, on each side of the interval::

    lo = mean - sqrt((median_b - q_lo)^2 + (t * se_seed)^2)
    hi = mean + sqrt((q_hi - median_b)^2 + (t * se_seed)^2)

where ``q_lo, q_hi`` are the bootstrap percentiles of the seed-averaged AUC (or
difference) and ``median_b`` their median.  With one seed the seed part is unknown
and left out (the row says so: ``n_seeds == 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jetfm_coffea.errors import ConfigError

__all__ = [
    "LEVELS",
    "Estimate",
    "auc",
    "auc_replicates",
    "bootstrap_counts",
    "difference",
    "estimate",
]

#: Interval levels reported everywhere (68% and 95%).
LEVELS: tuple[float, float] = (0.68, 0.95)


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its intervals (``level -> (lo, hi)``) and their parts."""

    mean: float
    intervals: dict[float, tuple[float, float]]
    n_seeds: int
    seed_sd: float  # standard deviation over seeds (of the per-seed values or differences)
    boot_sd: float  # standard deviation of the bootstrap replicates of the seed mean

    def ci(self, level: float) -> list[float]:
        """``[lo, hi]`` at ``level`` (a JSON-friendly list)."""
        lo, hi = self.intervals[level]
        return [lo, hi]


def _check(scores: np.ndarray, y: np.ndarray) -> None:
    if scores.shape != y.shape:
        raise ConfigError(f"scores {scores.shape} and labels {y.shape} differ in shape")
    if not (y.any() and (~y).any()):
        raise ConfigError("an AUC needs signal and background events in the test set")


def bootstrap_counts(y: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """``[n_boot, N]`` multinomial event weights of a stratified bootstrap of the test
    events ``y`` (bool, signal): each replicate draws ``sum(y)`` signal and ``sum(~y)``
    background events with replacement.  Share one array between the cells compared."""
    y = np.asarray(y, bool)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(y)), np.int32)
    for cls in (y, ~y):
        idx = np.flatnonzero(cls)
        if len(idx):
            counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), n_boot)
    return counts


def auc_replicates(scores: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The AUC (signal ``y`` scored high; ties count one half) under each row of event
    weights ``counts`` ``[B, N]``; a row of ones gives the plain AUC."""
    scores = np.asarray(scores, np.float64)
    y = np.asarray(y, bool)
    _check(scores, y)
    counts = np.atleast_2d(counts)
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of equal scores
    w = counts[:, order].astype(np.float64)
    ys = y[order]
    sig = np.add.reduceat(np.where(ys, w, 0.0), starts, axis=1)
    bkg = np.add.reduceat(np.where(ys, 0.0, w), starts, axis=1)
    below = np.cumsum(bkg, axis=1) - bkg  # background weight strictly below each group
    num = (sig * (below + 0.5 * bkg)).sum(1)
    return num / (sig.sum(1) * bkg.sum(1))


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """The AUC of ``scores`` for signal ``y`` (Mann-Whitney, ties one half)."""
    return float(auc_replicates(scores, y, np.ones((1, len(y)), np.int32))[0])


def _t(level: float, dof: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, dof))


def _combine(
    point: float, boot: np.ndarray, se: float, dof: float | None, levels: Sequence[float]
) -> dict[float, tuple[float, float]]:
    med = float(np.median(boot))
    out = {}
    for level in levels:
        q_lo, q_hi = np.percentile(boot, [50.0 * (1 - level), 50.0 * (1 + level)])
        h_seed = 0.0 if dof is None or se == 0.0 else _t(level, dof) * se
        lo = point - float(np.hypot(med - q_lo, h_seed))
        hi = point + float(np.hypot(q_hi - med, h_seed))
        out[level] = (lo, hi)
    return out


def _per_seed(
    seed_scores: Sequence[np.ndarray], y: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed plain AUCs ``[S]`` and bootstrap replicates ``[S, B]``."""
    if not len(seed_scores):
        raise ConfigError("an estimate needs the scores of at least one seed")
    points = np.array([auc(s, y) for s in seed_scores])
    reps = np.stack([auc_replicates(s, y, counts) for s in seed_scores])
    return points, reps


def estimate(
    seed_scores: Sequence[np.ndarray],
    y: np.ndarray,
    counts: np.ndarray,
    levels: Sequence[float] = LEVELS,
) -> Estimate:
    """Mean AUC over seeds with bootstrap-and-seed intervals (see the module docstring)."""
    points, reps = _per_seed(seed_scores, y, counts)
    n = len(points)
    sd = float(points.std(ddof=1)) if n > 1 else 0.0
    boot = reps.mean(0)
    intervals = _combine(
        float(points.mean()), boot, sd / np.sqrt(n), n - 1 if n > 1 else None, levels
    )
    return Estimate(float(points.mean()), intervals, n, sd, float(boot.std(ddof=1)))


def difference(
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    y: np.ndarray,
    counts: np.ndarray,
    *,
    paired_seeds: bool = False,
    levels: Sequence[float] = LEVELS,
) -> Estimate:
    """Mean AUC of ``a`` minus that of ``b`` (each a list of per-seed test scores on the
    same test events), with paired-bootstrap-and-seed intervals.

    ``paired_seeds``: seed ``i`` of ``a`` and of ``b`` trained on the same events (same
    label fraction and seed list): the seed part uses the per-seed differences.
    """
    pa, ra = _per_seed(a, y, counts)
    pb, rb = _per_seed(b, y, counts)
    boot = ra.mean(0) - rb.mean(0)  # the same resamples for both: paired over test events
    point = float(pa.mean() - pb.mean())
    if paired_seeds:
        if len(pa) != len(pb):
            raise ConfigError(f"paired seeds need as many seeds in a ({len(pa)}) as b ({len(pb)})")
        d = pa - pb
        n = len(d)
        sd = float(d.std(ddof=1)) if n > 1 else 0.0
        se, dof = sd / np.sqrt(n), (n - 1 if n > 1 else None)
    else:
        va = pa.var(ddof=1) / len(pa) if len(pa) > 1 else 0.0
        vb = pb.var(ddof=1) / len(pb) if len(pb) > 1 else 0.0
        se = float(np.sqrt(va + vb))
        sd = se
        parts = [(v, len(p) - 1) for v, p in ((va, pa), (vb, pb)) if len(p) > 1 and v > 0]
        dof = (va + vb) ** 2 / sum(v**2 / k for v, k in parts) if parts else None
    intervals = _combine(point, boot, se, dof, levels)
    return Estimate(point, intervals, min(len(pa), len(pb)), sd, float(boot.std(ddof=1)))
