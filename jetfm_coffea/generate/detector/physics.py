"""Physics of the detector: charges, resolutions and response, isolation, b tagging."""

from __future__ import annotations

import numpy as np

from jetfm_coffea.generate.detector.arrays import event_offsets
from jetfm_coffea.generate.detector.config import (
    BTAG_WP_MEDIUM,
    DetectorConfig,
)

__all__ = [
    "CAT_CHARGED",
    "CAT_ELECTRON",
    "CAT_GHOST_B",
    "CAT_GHOST_C",
    "CAT_HF",
    "CAT_MUON",
    "CAT_NEUTRAL",
    "CAT_PHOTON",
    "ELECTRON_MASS",
    "GHOST_SCALE",
    "MUON_MASS",
    "PF_PDGID",
    "PION_MASS",
    "btag_scores",
    "candidate_sigma",
    "charge_of",
    "ecal_sigma",
    "has_quark",
    "isolation_sum",
    "jet_sigma",
    "muon_sigma",
    "pseudorapidity",
    "response",
]

#: Candidate categories (charged hadron, neutral hadron, photon, electron, muon, forward
#: calorimeter) and the two ghost categories (last B and C hadrons), with their PF pdgId.
CAT_CHARGED, CAT_NEUTRAL, CAT_PHOTON, CAT_ELECTRON, CAT_MUON, CAT_HF, CAT_GHOST_B, CAT_GHOST_C = (
    range(8)
)
PF_PDGID = np.array([211, 130, 22, 11, 13, 1, 0, 0], dtype=np.int32)
GHOST_SCALE = 1e-18
MUON_MASS, ELECTRON_MASS, PION_MASS = 0.10566, 0.000511, 0.13957  # GeV


_CHARGED = {
    11: -1, 13: -1, 15: -1, 24: 1, 37: 1, 211: 1, 213: 1, 321: 1, 323: 1, 411: 1, 413: 1,
    431: 1, 433: 1, 521: 1, 523: 1, 541: 1, 2212: 1, 2214: 1, 2224: 2, 1114: -1, 3112: -1,
    3114: -1, 3222: 1, 3224: 1, 3312: -1, 3314: -1, 3334: -1, 4122: 1, 4222: 2, 4212: 1,
    4232: 1, 4332: 0, 5112: -1, 5132: -1, 5222: 1, 5332: -1, 6: 1,
}  # fmt: skip
_CHARGE_KEYS = np.array(sorted(_CHARGED), dtype=np.int64)
_CHARGE_VALS = np.array([_CHARGED[k] for k in sorted(_CHARGED)], dtype=np.int8)


def charge_of(pid: np.ndarray) -> np.ndarray:
    """Electric charge of the (long-lived) particles ``pid`` from a PDG table."""
    aid = np.abs(pid).astype(np.int64)
    pos = np.clip(np.searchsorted(_CHARGE_KEYS, aid), 0, len(_CHARGE_KEYS) - 1)
    q = np.where(_CHARGE_KEYS[pos] == aid, _CHARGE_VALS[pos], 0)
    return (q * np.sign(pid)).astype(np.int32)


def has_quark(aid: np.ndarray, q: int) -> np.ndarray:
    """Hadrons (by |PDG id|) whose heaviest quark is ``q`` (meson or baryon code)."""
    return ((aid // 100) % 10 == q) | ((aid // 1000) % 10 == q)


def pseudorapidity(pt: np.ndarray, pz: np.ndarray) -> np.ndarray:
    """η from pT and pz (±1000 along the beam)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 1e3)


def response(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Gaussian response factors 1 + σ·z, clipped to stay positive."""
    return np.clip(1.0 + sigma * rng.standard_normal(sigma.shape), 1e-3, None)


def ecal_sigma(e: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    """ECAL σ(E)/E (barrel below |η| = 1.479, endcap above)."""
    e = np.maximum(e, 1e-3)
    barrel = abseta < 1.479
    s = np.where(barrel, 0.03, 0.05)
    n = np.where(barrel, 0.12, 0.25)
    c = np.where(barrel, 0.003, 0.005)
    return np.sqrt(s**2 / e + (n / e) ** 2 + c**2)


def muon_sigma(pt: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    """Muon-system σ(pT)/pT."""
    a = np.select([abseta < 0.9, abseta < 1.2], [0.01, 0.015], 0.02)
    return np.sqrt(a**2 + (1e-4 * pt) ** 2)


def jet_sigma(pt: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    """Jet σ(pT)/pT = N/pT ⊕ S/√pT ⊕ C in three |η| regions."""
    pt = np.maximum(pt, 1.0)
    n = np.select([abseta < 1.3, abseta < 3.0], [3.0, 4.0], 5.0)
    s = np.select([abseta < 1.3, abseta < 3.0], [1.0, 1.2], 1.5)
    c = np.select([abseta < 1.3, abseta < 3.0], [0.05, 0.06], 0.08)
    return np.sqrt((n / pt) ** 2 + s**2 / pt + c**2)


def candidate_sigma(
    cat: np.ndarray, pt: np.ndarray, e: np.ndarray, abseta: np.ndarray
) -> np.ndarray:
    """σ of each candidate, from the sub-detector of its category."""
    e = np.maximum(e, 1e-3)
    return np.select(
        [
            cat == CAT_CHARGED,
            cat == CAT_ELECTRON,
            cat == CAT_PHOTON,
            cat == CAT_MUON,
            cat == CAT_NEUTRAL,
            cat == CAT_HF,
        ],
        [
            np.sqrt(0.005**2 + (1.5e-4 * pt) ** 2),
            ecal_sigma(e, abseta),
            ecal_sigma(e, abseta),
            muon_sigma(pt, abseta),
            np.sqrt(1.0 / e + 0.05**2),
            np.sqrt(1.5**2 / e + 0.1**2),
        ],
        0.0,
    )


def isolation_sum(
    obj_evt: np.ndarray,
    obj_eta: np.ndarray,
    obj_phi: np.ndarray,
    obj_self: np.ndarray,
    radius: np.ndarray,
    cand_off: np.ndarray,
    c_eta: np.ndarray,
    c_phi: np.ndarray,
    c_pt: np.ndarray,
) -> np.ndarray:
    """Scalar pT sum of the candidates within ``radius`` of each object (itself excluded)."""
    n_obj = len(obj_evt)
    if n_obj == 0:
        return np.zeros(0)
    ncand = (cand_off[1:] - cand_off[:-1])[obj_evt]
    pair_obj = np.repeat(np.arange(n_obj), ncand)
    block = event_offsets(ncand)
    pair_c = cand_off[obj_evt][pair_obj] + (np.arange(len(pair_obj)) - block[pair_obj])
    deta = c_eta[pair_c] - obj_eta[pair_obj]
    dphi = np.mod(c_phi[pair_c] - obj_phi[pair_obj] + np.pi, 2 * np.pi) - np.pi
    inside = (deta**2 + dphi**2 < radius[pair_obj] ** 2) & (pair_c != obj_self[pair_obj])
    return np.bincount(pair_obj, weights=np.where(inside, c_pt[pair_c], 0.0), minlength=n_obj)


def btag_scores(
    rng: np.random.Generator, flavour: np.ndarray, abseta: np.ndarray, cfg: DetectorConfig
) -> np.ndarray:
    """Per-flavour b-tag score; above :data:`BTAG_WP_MEDIUM` with the configured efficiency."""
    n = len(flavour)
    eff = np.select(
        [flavour == 5, flavour == 4], [cfg.btag_eff_b, cfg.btag_eff_c], cfg.btag_eff_light
    )
    tagged = rng.random(n) < eff
    # Beta parameters (tagged a, b, untagged a, b) for b, c and light jets
    params = np.select(
        [flavour[:, None] == 5, flavour[:, None] == 4],
        [np.array([[6.0, 1.0, 1.5, 1.5]]), np.array([[2.0, 2.0, 1.2, 3.0]])],
        np.array([[1.0, 3.0, 0.6, 8.0]]),
    )
    hi = BTAG_WP_MEDIUM + (1.0 - BTAG_WP_MEDIUM) * rng.beta(params[:, 0], params[:, 1])
    lo = BTAG_WP_MEDIUM * rng.beta(params[:, 2], params[:, 3])
    score = np.where(tagged, hi, lo)
    return np.where(abseta < cfg.tracker_eta_max, score, -1.0).astype(np.float32)
