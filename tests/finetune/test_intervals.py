"""The study's statistics: paired bootstrap over test events combined with the seed spread."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.intervals import (
    auc,
    auc_replicates,
    bootstrap_counts,
    difference,
    estimate,
)


def _gauss(rng, n_sig, n_bkg, shift):
    y = np.r_[np.ones(n_sig, bool), np.zeros(n_bkg, bool)]
    return rng.normal(0, 1, n_sig + n_bkg) + shift * y, y


def test_auc_matches_scikit_learn_with_ties_and_weights():
    rng = np.random.default_rng(1)
    s, y = _gauss(rng, 300, 500, 0.8)
    s = np.round(s, 1)  # many ties
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    counts = bootstrap_counts(y, 3, seed=2)
    for row, value in zip(counts, auc_replicates(s, y, counts), strict=True):
        assert value == pytest.approx(roc_auc_score(y, s, sample_weight=row), abs=1e-12)
    # stratified: every replicate keeps the class counts
    assert (counts[:, y].sum(1) == 300).all() and (counts[:, ~y].sum(1) == 500).all()


def test_bootstrap_intervals_cover_the_true_auc_at_their_level():
    """Known case: signal N(d, 1) vs background N(0, 1) has AUC = Phi(d / sqrt 2)."""
    rng = np.random.default_rng(7)
    d = 1.0
    truth = norm.cdf(d / np.sqrt(2))
    hits = {0.68: 0, 0.95: 0}
    trials = 150
    for _ in range(trials):
        s, y = _gauss(rng, 400, 600, d)
        est = estimate([s], y, bootstrap_counts(y, 250, seed=int(rng.integers(1 << 30))))
        for level in hits:
            lo, hi = est.intervals[level]
            hits[level] += lo <= truth <= hi
    assert 0.58 <= hits[0.68] / trials <= 0.78
    assert 0.90 <= hits[0.95] / trials <= 0.99


def test_paired_difference_resolves_what_unpaired_cannot():
    """Model b is model a with a planted defect (2% of its events scored at random): the
    paired interval of a - b excludes 0 and is several times narrower than the interval
    of two independent AUC estimates; the shared test-set noise cancels."""
    rng = np.random.default_rng(3)
    s, y = _gauss(rng, 5000, 5000, 1.2)
    broken = s.copy()
    hit = rng.random(len(s)) < 0.02
    broken[hit] = rng.normal(0.6, 1.0, hit.sum())
    counts = bootstrap_counts(y, 400, seed=5)
    paired = difference([s], [broken], y, counts)
    ea, eb = estimate([s], y, counts), estimate([broken], y, counts)
    unpaired_width = 2 * 1.96 * np.hypot(ea.boot_sd, eb.boot_sd)
    lo, hi = paired.intervals[0.95]
    assert 0 < lo < paired.mean < hi
    assert (hi - lo) < 0.5 * unpaired_width
    # the two single intervals overlap: read separately they could not tell a from b
    assert ea.intervals[0.95][0] < eb.intervals[0.95][1]


def test_seed_spread_widens_the_interval_with_student_t():
    """Three seeds whose scores differ only by a shift of the signal: the test-set part
    is the same, the seed part adds t(0.975, 2) x sd / sqrt(3) in quadrature."""
    rng = np.random.default_rng(11)
    s, y = _gauss(rng, 2000, 2000, 1.0)
    seeds = [s + 0.3 * k * y for k in range(3)]
    counts = bootstrap_counts(y, 300, seed=1)
    est = estimate(seeds, y, counts)
    points = np.array([auc(x, y) for x in seeds])
    assert est.mean == pytest.approx(points.mean())
    assert est.seed_sd == pytest.approx(points.std(ddof=1))
    single = estimate([seeds[1]], y, counts)
    h_seed = 4.302653 * points.std(ddof=1) / np.sqrt(3)  # t(0.975, dof 2)
    lo, hi = est.intervals[0.95]
    s_lo, s_hi = single.intervals[0.95]
    assert hi - lo > 2 * h_seed  # the seed part is there
    assert hi - est.mean >= h_seed and est.mean - lo >= h_seed
    assert hi - est.mean < h_seed + (s_hi - s_lo)  # quadrature, not a plain sum


def test_paired_seeds_use_the_per_seed_differences():
    """Two rows on the same seeds whose per-seed AUCs move together: the per-seed
    differences are constant, so the paired seed part vanishes; unpaired it does not."""
    rng = np.random.default_rng(5)
    s, y = _gauss(rng, 1000, 1000, 1.0)
    a = [s + 0.2 * k * y for k in range(4)]
    b = [x - 0.1 * y * (x > 0) for x in a]
    counts = bootstrap_counts(y, 200, seed=2)
    paired = difference(a, b, y, counts, paired_seeds=True)
    unpaired = difference(a, b, y, counts, paired_seeds=False)
    assert paired.seed_sd < 0.2 * unpaired.seed_sd
    w = {k: e.intervals[0.95][1] - e.intervals[0.95][0] for k, e in (("p", paired),
                                                                      ("u", unpaired))}  # fmt: skip
    assert w["p"] < w["u"]
    with pytest.raises(ConfigError, match="paired seeds need as many"):
        difference(a, b[:2], y, counts, paired_seeds=True)


def test_bad_input():
    y = np.ones(5, bool)
    with pytest.raises(ConfigError, match="signal and background"):
        auc(np.arange(5.0), y)
    with pytest.raises(ConfigError, match="differ in shape"):
        auc(np.arange(4.0), np.r_[y, False])
