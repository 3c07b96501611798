"""Reference rows of the label-efficiency study: gradient-boosted trees (scikit-learn).

Two references, trained on exactly the labelled events, validation events and test
events of the encoder modes (:meth:`FinetuneSetup.select`, the same seeds):

* ``bdt-raw``: ``HistGradientBoostingClassifier`` on the raw padded tokens (every
  feature of every token slot; empty slots are missing values, which the trees handle);
* ``bdt-features``: the same on the high-level features an analyst would use
  (:func:`engineered_features`: object pT and η, multiplicities, HT, MET, b-tag count
  and sorted b-tag scores, m_bb / pT_bb / ΔR_bb of the leading b-tagged pair, m_jj,
  the lepton-MET transverse mass, ...), computed from the same tokens.

The number of boosting iterations is chosen on the validation loss (class-weighted
log loss, as for the encoder modes, on the study's validation events): trees are added
until ``patience`` iterations pass without improvement, and the test scores are those
of the best iteration.  A run directory holds ``run.json``, ``test_metrics.json``,
``test_scores.npz`` (the layout of a fine-tuning run) and the fitted model
(``model.joblib``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.config import REFERENCE_MODES, LabelCount, ReferenceConfig
from jetfm_coffea.finetune.metrics import classification_metrics
from jetfm_coffea.finetune.trainer import (
    FinetuneResult,
    FinetuneSetup,
    class_weights,
    save_test_scores,
)
from jetfm_coffea.model.rundir import RUN_INFO
from jetfm_coffea.tokens.config import TokenConfig

__all__ = [
    "MAX_ITER_EXTENSIONS",
    "engineered_features",
    "iteration_cap",
    "raw_features",
    "reference_features",
    "train_reference",
]


def raw_features(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[N, T * F]``: every token slot's features, NaN where the slot is empty."""
    x = np.where(mask[..., None], tokens, np.nan).astype(np.float32)
    return x.reshape(len(tokens), -1)


def _column(config: TokenConfig, tokens: np.ndarray, name: str) -> np.ndarray:
    names = config.feature_names
    if name not in names:
        raise ConfigError(
            f"the engineered features need the token feature {name!r}; the token config has {names}"
        )
    return tokens[..., names.index(name)].astype(np.float64)


def _type_mask(config: TokenConfig, tokens: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    ids = {c.name: c.type_id for c in config.collections}
    if name not in ids:
        return np.zeros(mask.shape, dtype=bool)
    return mask & (np.rint(_column(config, tokens, "type_id")) == ids[name])


def _kinematics(config: TokenConfig, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """pt, eta, phi, E, px, py, pz per token slot."""
    pt = np.exp(_column(config, tokens, "log_pt"))
    eta = _column(config, tokens, "eta")
    phi = np.arctan2(_column(config, tokens, "sin_phi"), _column(config, tokens, "cos_phi"))
    if "log_e" in config.feature_names:
        e = np.exp(_column(config, tokens, "log_e"))
    else:
        m = np.expm1(_column(config, tokens, "log_m"))
        e = np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "e": e,
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
    }


def _leading(values: np.ndarray, order: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """``[N, k]``: ``values`` of the first ``k`` valid slots in ``order``, NaN beyond."""
    v = np.take_along_axis(np.where(valid, values, np.nan), order, axis=1)[:, :k]
    if v.shape[1] < k:
        v = np.pad(v, ((0, 0), (0, k - v.shape[1])), constant_values=np.nan)
    return v


def _pair(kin: dict[str, np.ndarray], first: np.ndarray, second: np.ndarray) -> dict[str, Any]:
    """Mass, pT and ΔR of the slot pairs ``(first, second)`` (NaN where an index is -1)."""
    rows = np.arange(len(first))
    ok = (first >= 0) & (second >= 0)
    a, b = np.maximum(first, 0), np.maximum(second, 0)

    def get(name: str, idx: np.ndarray) -> np.ndarray:
        return kin[name][rows, idx]

    px, py = get("px", a) + get("px", b), get("py", a) + get("py", b)
    pz, e = get("pz", a) + get("pz", b), get("e", a) + get("e", b)
    m = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    dphi = np.angle(np.exp(1j * (get("phi", a) - get("phi", b))))
    dr = np.hypot(get("eta", a) - get("eta", b), dphi)
    nan = np.nan
    return {
        "m": np.where(ok, m, nan),
        "pt": np.where(ok, np.hypot(px, py), nan),
        "dr": np.where(ok, dr, nan),
    }


def engineered_features(
    tokens: np.ndarray, mask: np.ndarray, config: TokenConfig, ref: ReferenceConfig
) -> tuple[np.ndarray, list[str]]:
    """High-level features of every event, from its tokens; returns ``(X [N, D], names)``.

    Jets are the ``Jet`` tokens above ``ref.jet_min_pt``; b-tagged jets those with a
    ``btag`` feature above ``ref.btag_threshold``; leptons the ``Muon`` and ``Electron``
    tokens; MET the ``MET`` token (0 when the token config has none).  Missing values
    (a fourth jet in a three-jet event, m_bb without two b tags) are NaN.
    """
    kin = _kinematics(config, tokens)
    btag = _column(config, tokens, "btag")
    pt = kin["pt"]
    jets = _type_mask(config, tokens, mask, "Jet") & (pt > ref.jet_min_pt)
    bjets = jets & (btag > ref.btag_threshold)
    muons = _type_mask(config, tokens, mask, "Muon")
    electrons = _type_mask(config, tokens, mask, "Electron")
    photons = _type_mask(config, tokens, mask, "Photon")
    leptons = muons | electrons
    met_slot = _type_mask(config, tokens, mask, "MET")
    met = np.where(met_slot, pt, 0.0).sum(1)
    met_phi = np.where(met_slot, kin["phi"], 0.0).sum(1)

    def by_pt(valid: np.ndarray) -> np.ndarray:
        return np.argsort(np.where(valid, -pt, np.inf), axis=1, kind="stable")

    k = ref.n_jets
    jet_order = by_pt(jets)
    cols: dict[str, np.ndarray] = {
        "n_jets": jets.sum(1),
        "n_btag": bjets.sum(1),
        "n_muons": muons.sum(1),
        "n_electrons": electrons.sum(1),
        "n_photons": photons.sum(1),
        "ht": np.where(jets, pt, 0.0).sum(1),
        "met": met,
    }
    for name, values in (("pt", pt), ("eta", kin["eta"]), ("btag", btag)):
        lead = _leading(values, jet_order, jets, k)
        cols.update({f"jet{i + 1}_{name}": lead[:, i] for i in range(k)})
    btag_order = np.argsort(np.where(jets, -btag, np.inf), axis=1, kind="stable")
    sorted_btag = _leading(btag, btag_order, jets, 4)
    cols.update({f"btag_rank{i + 1}": sorted_btag[:, i] for i in range(4)})
    lep_order = by_pt(leptons)
    lep_pt = _leading(pt, lep_order, leptons, 2)
    lep_eta = _leading(kin["eta"], lep_order, leptons, 1)[:, 0]
    lep_phi = _leading(kin["phi"], lep_order, leptons, 1)[:, 0]
    cols.update(
        {
            "lep1_pt": lep_pt[:, 0],
            "lep2_pt": lep_pt[:, 1],
            "lep1_eta": lep_eta,
            "mt_lep_met": np.sqrt(
                np.maximum(2 * lep_pt[:, 0] * met * (1 - np.cos(lep_phi - met_phi)), 0.0)
            ),
        }
    )

    def nth(valid: np.ndarray, order: np.ndarray, i: int) -> np.ndarray:
        idx = order[:, i] if order.shape[1] > i else np.full(len(order), -1)
        return np.where(valid.sum(1) > i, idx, -1)

    b_order = by_pt(bjets)
    bb = _pair(kin, nth(bjets, b_order, 0), nth(bjets, b_order, 1))
    jj = _pair(kin, nth(jets, jet_order, 0), nth(jets, jet_order, 1))
    cols.update({"m_bb": bb["m"], "pt_bb": bb["pt"], "dr_bb": bb["dr"]})
    cols.update({"m_jj": jj["m"], "pt_jj": jj["pt"], "dr_jj": jj["dr"]})
    # the b-tagged pair closest in ΔR (the usual ttH(bb) / boosted-pair handle)
    nb = min(bjets.shape[1], 6)
    best_dr = np.full(len(tokens), np.nan)
    best_m = np.full(len(tokens), np.nan)
    for i in range(nb):
        for j in range(i + 1, nb):
            p = _pair(kin, nth(bjets, b_order, i), nth(bjets, b_order, j))
            better = np.isfinite(p["dr"]) & ~(p["dr"] >= best_dr)
            best_dr = np.where(better, p["dr"], best_dr)
            best_m = np.where(better, p["m"], best_m)
    cols.update({"min_dr_bb": best_dr, "m_bb_min_dr": best_m})
    jet_e = np.where(jets, kin["e"], 0.0)
    jet_p = {c: np.where(jets, kin[c], 0.0).sum(1) for c in ("px", "py", "pz")}
    m_jets = np.sqrt(np.maximum(jet_e.sum(1) ** 2 - sum(v**2 for v in jet_p.values()), 0.0))
    cols["m_jets"] = np.where(jets.any(1), m_jets, np.nan)
    cols["centrality"] = np.where(jets.any(1), cols["ht"] / np.maximum(jet_e.sum(1), 1e-9), np.nan)
    names = list(cols)
    x = np.stack([np.asarray(cols[n], dtype=np.float64) for n in names], axis=1)
    return x.astype(np.float32), names


def reference_features(
    mode: str, tokens: np.ndarray, mask: np.ndarray, config: TokenConfig, ref: ReferenceConfig
) -> tuple[np.ndarray, list[str]]:
    """The inputs of reference ``mode`` (``bdt-raw`` or ``bdt-features``)."""
    if mode == "bdt-raw":
        x = raw_features(tokens, mask)
        names = [f"t{t}_{f}" for t in range(tokens.shape[1]) for f in config.feature_names]
        return x, names
    if mode == "bdt-features":
        return engineered_features(tokens, mask, config, ref)
    raise ConfigError(f"unknown reference mode {mode!r}; choose from {list(REFERENCE_MODES)}")


def _informative(x: np.ndarray) -> np.ndarray:
    """Columns with at least two distinct finite values in ``x`` (token slots that are
    always empty, or constant, carry nothing and trip scikit-learn's binning)."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x)
        lo = np.where(finite, x, np.inf).min(0)
        hi = np.where(finite, x, -np.inf).max(0)
    return hi > lo


#: How many times a still-improving fit may double its iteration cap.
MAX_ITER_EXTENSIONS = 4


def iteration_cap(ref: ReferenceConfig) -> int:
    """The most boosting iterations a fit may reach: ``ref.max_iter`` doubled
    :data:`MAX_ITER_EXTENSIONS` times."""
    return ref.max_iter * 2**MAX_ITER_EXTENSIONS


def _fit(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    wv: np.ndarray,
    ref: ReferenceConfig,
    lr: float,
    seed: int,
) -> tuple[Any, int, int, float, bool]:
    """Boost until the (weighted) validation loss has not improved for ``ref.patience``
    iterations, on our validation events (scikit-learn's early stopping with ``X_val``).

    ``ref.max_iter`` is the first cap, not the last: a fit that reaches it while its
    validation loss still improves goes on (warm start) with the cap doubled, up to
    :data:`MAX_ITER_EXTENSIONS` doublings; only then is it reported as capped.

    Returns ``(model, iterations, best iteration, best validation loss, capped)``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(
        learning_rate=lr,
        max_iter=ref.max_iter,
        max_leaf_nodes=ref.max_leaf_nodes,
        min_samples_leaf=min(ref.min_samples_leaf, max(1, len(y) // 10)),
        l2_regularization=ref.l2_regularization,
        early_stopping=True,
        scoring="loss",
        n_iter_no_change=ref.patience,
        random_state=seed,
    )
    cap = ref.max_iter
    while True:
        clf.fit(x, y, sample_weight=w, X_val=xv, y_val=yv, sample_weight_val=wv)
        scores = np.asarray(clf.validation_score_)  # minus the loss; [0]: before any tree
        best = max(1, int(np.argmax(scores)))
        n = int(clf.n_iter_)
        capped = n >= cap and n - best < ref.patience
        if not capped or cap >= iteration_cap(ref):
            break
        cap *= 2
        clf.set_params(max_iter=cap, warm_start=True)
    return clf, n, best, float(-scores[best]), capped


def _staged(clf: Any, x: np.ndarray, iteration: int) -> np.ndarray:
    for i, probs in enumerate(clf.staged_predict_proba(x)):
        if i + 1 == iteration:
            return probs
    return clf.predict_proba(x)


def train_reference(
    setup: FinetuneSetup,
    out: str | Path,
    *,
    mode: str,
    labels: LabelCount = "all",
    seed: int = 0,
    lr: float | None = None,
    features: tuple[np.ndarray, list[str]] | None = None,
) -> FinetuneResult:
    """Train reference ``mode`` on the labelled events of ``(labels, seed)``; write ``out``.

    ``lr``: the boosting learning rate (default: the first of the task's
    ``reference.learning_rates``); ``features``: precomputed inputs of every event of
    ``setup.data`` (the study computes them once per mode).
    """
    t0 = time.perf_counter()
    task, data = setup.task, setup.data
    ref = task.reference
    lr = ref.learning_rates[0] if lr is None else lr
    n_labels = setup.resolve_labels(labels)
    train_idx, val_idx = setup.select(n_labels, seed)
    test_idx = setup.test_index
    x, names = features or reference_features(mode, data.tokens, data.mask, data.token_config, ref)
    cw = class_weights(setup.targets[train_idx], data.weight[train_idx], task)

    def weights(idx: np.ndarray) -> np.ndarray:
        return (data.weight[idx] * cw[setup.targets[idx]]).astype(np.float64)

    t_train = time.perf_counter()
    cols = _informative(x[train_idx])
    clf, n_iter, best, best_loss, capped = _fit(
        x[train_idx][:, cols], setup.targets[train_idx], weights(train_idx),
        x[val_idx][:, cols], setup.targets[val_idx], weights(val_idx), ref, lr, seed,
    )  # fmt: skip
    train_s = time.perf_counter() - t_train
    probs = _staged(clf, x[test_idx][:, cols], best).astype(np.float32)
    y_test = setup.targets[test_idx]
    metrics = classification_metrics(probs, y_test, task.signal_index, task.class_names)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    import joblib

    joblib.dump(clf, out / "model.joblib")
    save_test_scores(out, probs, y_test, data, test_idx)
    atomic_write_text(out / "test_metrics.json", json.dumps(metrics, indent=1))
    wall_s = time.perf_counter() - t0
    stopped_by = "max_steps" if capped else "patience"
    info = {
        "kind": "reference",
        "status": "completed",
        "mode": mode,
        "classes": task.class_names,
        "n_labels": n_labels,
        "n_val": len(val_idx),
        "n_test": len(test_idx),
        "seed": seed,
        "lr": lr,
        "task_config_hash": task.hash(),
        "data": {"n_events": data.provenance.get("n_events")},
        "features": [n for n, keep in zip(names, cols, strict=True) if keep],
        "steps_done": n_iter,
        "best_step": best,
        "best_val_loss": best_loss,
        "stopped_early": not capped,
        "stopped_by": stopped_by,
        "wall_s": wall_s,
        "train_s": train_s,
    }
    atomic_write_text(out / RUN_INFO, json.dumps(info, indent=1))
    return FinetuneResult(
        run_dir=out,
        mode=mode,
        n_labels=n_labels,
        seed=seed,
        steps=n_iter,
        best_step=best,
        best_val_loss=best_loss,
        stopped_early=not capped,
        stopped_by=stopped_by,
        test_metrics=metrics,
        wall_s=wall_s,
        train_s=train_s,
        probs=probs,
        targets=y_test,
        lr=lr,
    )
