"""A parametric, CMS-like detector: Pythia 8 particles -> NanoAOD-like reconstructed objects.

Everything is vectorised over a batch of events (flat NumPy arrays plus per-event
counts); there are no per-particle Python loops.  FastJet clusters the jets.

Particle flow inputs ("candidates")
===================================
Visible final-state particles (neutrinos and invisible BSM particles removed) become
candidates when they are inside the detector and above its thresholds:

================= ====================== ====================================== ==========
candidate         particles              acceptance, threshold                  PF pdgId
================= ====================== ====================================== ==========
charged hadron    charged, not e/μ       \\|η\\| < 2.5, pT > 0.3 GeV            ±211
electron          e±                     \\|η\\| < 2.5, pT > 0.3 GeV            ±11
muon              μ±                     \\|η\\| < 2.4, pT > 0.5 GeV            ±13
photon            γ, and e± outside      \\|η\\| < 3.0, E > 0.5 GeV             22
                  the tracker
neutral hadron    neutral hadrons, and   \\|η\\| < 3.0, E > 1.0 GeV             130
                  charged outside it
forward (HF)      any visible, 3<\\|η\\|<5  E > 3.0 GeV                        1
================= ====================== ====================================== ==========

Muons outside |η| < 2.4 and everything below threshold are lost (they end up in MET).
Candidates are smeared with the resolution of their sub-detector (``PFCands`` output
and the unclustered part of MET):

================= ===========================================================
tracker (h±, e±)  σ(pT)/pT = 0.5 % ⊕ 0.015 %·pT
muon system       σ(pT)/pT = a ⊕ 0.01 %·pT, a = 1 % (|η|<0.9), 1.5 % (<1.2), 2 %
ECAL (γ, e±)      σ(E)/E = 3 %/√E ⊕ 0.12/E ⊕ 0.3 % (|η|<1.479); 5 %/√E ⊕ 0.25/E ⊕ 0.5 %
HCAL              σ(E)/E = 100 %/√E ⊕ 5 %
HF                σ(E)/E = 150 %/√E ⊕ 10 %
================= ===========================================================

Reconstructed objects
=====================

============ ===================================================================================
Jet          anti-kT R = 0.4 (FastJet) of the *unsmeared* candidates, then smeared:
             σ(pT)/pT = N/pT ⊕ S/√pT ⊕ C with (N, S, C) = (3, 1.0, 0.05) for |η| < 1.3,
             (4, 1.2, 0.06) for |η| < 3.0 and (5, 1.5, 0.08) up to 4.7.  Kept: pT > 20 GeV,
             |η| < 4.7.  ``jetId`` = 6 (tight + lepton veto), 2 (tight, fails the lepton
             veto: muon or electron energy fraction ≥ 0.8) or 0 (neutral hadron or photon
             energy fraction ≥ 0.9).  ``GenJet`` holds the unsmeared jets (pT > 15 GeV).
b tagging    ``hadronFlavour`` by ghost-matching the last B (5) or else C (4) hadrons.  Tagging
             (|η| < 2.5) at the medium working point :data:`BTAG_WP_MEDIUM`:
             efficiency 70 % (b), 10 % (c), 1 % (light); ``btagDeepFlavB`` is drawn from
             per-flavour Beta distributions on either side of the working point, so
             ``btagDeepFlavB > BTAG_WP_MEDIUM`` is exactly the tag decision; -1 outside the
             tracker.
FatJet       anti-kT R = 0.8, same smearing, pT > 170 GeV, |η| < 4.7; ``nBHadrons`` and
             ``nCHadrons`` from the ghosts.  ``GenJetAK8``: unsmeared, pT > 100 GeV.
             Sub-jets are not simulated (``SubJet`` is empty, indices are -1).
Muon         true μ, |η| < 2.4, pT > 3 GeV; efficiency 98 % (pT > 10 GeV) or 90 %; muon-system
             resolution above; ``tightId`` with probability 96 %; ``looseId`` always.
Electron     true e, |η| < 2.5, pT > 5 GeV; efficiency 95 % (|η| < 1.479) or 90 %
             (80 % below 10 GeV); ECAL resolution; ``cutBased`` (0 fail … 4 tight) is the
             lower of an identification grade (tight 85 %, medium 5 %, loose 4 %, veto 3 %,
             fail 3 %) and an isolation grade (relIso < 0.0588 tight, < 0.0695 medium,
             < 0.112 loose, < 0.198 veto).
Photon       true γ, |η| < 2.5, pT > 10 GeV; efficiency 95 %; ECAL resolution; ``cutBased``
             (0 fail … 3 tight) the lower of an identification grade (tight 80 %, medium
             10 %, loose 5 %, fail 5 %) and an isolation grade (< 0.07, < 0.10, < 0.15).
Isolation    scalar pT sum of the other candidates within ΔR < 0.4 (muons,
             ``pfRelIso04_all``) or 0.3 (electrons, photons, ``pfRelIso03_all``) / pT.
MET          minus the vector sum of the smeared jets (raw pT > 15 GeV) and the smeared
             candidates outside them.  ``GenMET`` is the neutrino (invisible) sum.
GenPart      hard-process particles (|status| 21-29), the last copies of t, W, Z, H and τ,
             final e/μ/ν with pT > 3 GeV and photons with pT > 10 GeV; mothers re-pointed
             to the nearest kept ancestor.  ``statusFlags`` carries isPrompt (bit 0),
             isHardProcess (bit 7) and isLastCopy (bit 13), approximately.
============ ===================================================================================

Collections that are not simulated but that coffea's ``NanoAODSchema`` cross-references
(``Tau``, ``LowPtElectron``, ``FsrPhoton``, ``GenVisTau``, ``SubJet``) are written empty,
so that the files read without warnings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea._optional import import_optional

__all__ = ["BTAG_WP_MEDIUM", "DetectorConfig", "simulate"]

BTAG_WP_MEDIUM = 0.2770
"""Medium working point of ``Jet_btagDeepFlavB`` (DeepJet, 2018 value)."""

# candidate categories
_CH, _NH, _PHO, _ELE, _MU, _HF, _GB, _GC = range(8)
_PF_PDGID = np.array([211, 130, 22, 11, 13, 1, 0, 0], dtype=np.int32)
_GHOST_SCALE = 1e-18


@dataclass(frozen=True)
class DetectorConfig:
    """The numbers of the parametric detector (see the module docstring)."""

    jet_r: float = 0.4
    fatjet_r: float = 0.8
    jet_pt_min: float = 20.0
    jet_raw_pt_min: float = 15.0
    jet_eta_max: float = 4.7
    fatjet_pt_min: float = 170.0
    fatjet_raw_pt_min: float = 100.0
    muon_pt_min: float = 3.0
    muon_eta_max: float = 2.4
    electron_pt_min: float = 5.0
    electron_eta_max: float = 2.5
    photon_pt_min: float = 10.0
    photon_eta_max: float = 2.5
    tracker_eta_max: float = 2.5
    calo_eta_max: float = 3.0
    hf_eta_max: float = 5.0
    btag_eff_b: float = 0.70
    btag_eff_c: float = 0.10
    btag_eff_light: float = 0.01
    muon_tight_eff: float = 0.96
    pfcands: bool = False


# ----------------------------------------------------------------------------- helpers

_CHARGED = {
    11: -1, 13: -1, 15: -1, 24: 1, 37: 1, 211: 1, 213: 1, 321: 1, 323: 1, 411: 1, 413: 1,
    431: 1, 433: 1, 521: 1, 523: 1, 541: 1, 2212: 1, 2214: 1, 2224: 2, 1114: -1, 3112: -1,
    3114: -1, 3222: 1, 3224: 1, 3312: -1, 3314: -1, 3334: -1, 4122: 1, 4222: 2, 4212: 1,
    4232: 1, 4332: 0, 5112: -1, 5132: -1, 5222: 1, 5332: -1, 6: 1,
}  # fmt: skip
_CHARGE_KEYS = np.array(sorted(_CHARGED), dtype=np.int64)
_CHARGE_VALS = np.array([_CHARGED[k] for k in sorted(_CHARGED)], dtype=np.int8)


def _charge(pid: np.ndarray) -> np.ndarray:
    """Electric charge of the (long-lived) particles ``pid`` from a PDG table."""
    aid = np.abs(pid).astype(np.int64)
    pos = np.clip(np.searchsorted(_CHARGE_KEYS, aid), 0, len(_CHARGE_KEYS) - 1)
    q = np.where(_CHARGE_KEYS[pos] == aid, _CHARGE_VALS[pos], 0)
    return (q * np.sign(pid)).astype(np.int32)


def _has_quark(aid: np.ndarray, q: int) -> np.ndarray:
    """Hadrons (by |PDG id|) whose heaviest quark is ``q`` (meson or baryon code)."""
    return ((aid // 100) % 10 == q) | ((aid // 1000) % 10 == q)


def _eta(pt: np.ndarray, pz: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 1e3)


def _scale(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Gaussian response factors 1 + σ·z, clipped to stay positive."""
    return np.clip(1.0 + sigma * rng.standard_normal(sigma.shape), 1e-3, None)


def _ecal_sigma(e: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    e = np.maximum(e, 1e-3)
    barrel = abseta < 1.479
    s = np.where(barrel, 0.03, 0.05)
    n = np.where(barrel, 0.12, 0.25)
    c = np.where(barrel, 0.003, 0.005)
    return np.sqrt(s**2 / e + (n / e) ** 2 + c**2)


def _muon_sigma(pt: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    a = np.select([abseta < 0.9, abseta < 1.2], [0.01, 0.015], 0.02)
    return np.sqrt(a**2 + (1e-4 * pt) ** 2)


def _jet_sigma(pt: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    pt = np.maximum(pt, 1.0)
    n = np.select([abseta < 1.3, abseta < 3.0], [3.0, 4.0], 5.0)
    s = np.select([abseta < 1.3, abseta < 3.0], [1.0, 1.2], 1.5)
    c = np.select([abseta < 1.3, abseta < 3.0], [0.05, 0.06], 0.08)
    return np.sqrt((n / pt) ** 2 + s**2 / pt + c**2)


def _cand_sigma(cat: np.ndarray, pt: np.ndarray, e: np.ndarray, abseta: np.ndarray) -> np.ndarray:
    e = np.maximum(e, 1e-3)
    return np.select(
        [cat == _CH, cat == _ELE, cat == _PHO, cat == _MU, cat == _NH, cat == _HF],
        [
            np.sqrt(0.005**2 + (1.5e-4 * pt) ** 2),
            _ecal_sigma(e, abseta),
            _ecal_sigma(e, abseta),
            _muon_sigma(pt, abseta),
            np.sqrt(1.0 / e + 0.05**2),
            np.sqrt(1.5**2 / e + 0.1**2),
        ],
        0.0,
    )


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _sort_within_events(evt: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Permutation ordering items by event, then by ``key`` descending."""
    return np.lexsort((-key, evt))


def _local_index(evt: np.ndarray, n_events: int) -> np.ndarray:
    """Index of each (event-ordered) item within its event."""
    counts = np.bincount(evt, minlength=n_events)
    return np.arange(len(evt)) - _offsets(counts)[evt]


def _jagged(evt: np.ndarray, n_events: int, fields: dict[str, np.ndarray]) -> ak.Array:
    """Zip event-ordered flat arrays into a jagged record array."""
    offsets = _offsets(np.bincount(evt, minlength=n_events))
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in fields.values()],
        list(fields),
        length=len(evt),
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def _empty(n_events: int, fields: dict[str, type]) -> ak.Array:
    """A collection that is always empty, with typed fields."""
    return _jagged(
        np.zeros(0, dtype=np.int64),
        n_events,
        {k: np.zeros(0, dtype=v) for k, v in fields.items()},
    )


def _first_two(owner: np.ndarray, item: np.ndarray, n_owner: int) -> tuple[np.ndarray, np.ndarray]:
    """For owners 0..n_owner-1, the first two ``item`` values (sorted) they own, else -1."""
    idx1 = np.full(n_owner, -1, dtype=np.int32)
    idx2 = np.full(n_owner, -1, dtype=np.int32)
    sel = owner >= 0
    owner, item = owner[sel], item[sel]
    if len(owner) == 0:
        return idx1, idx2
    order = np.lexsort((item, owner))
    owner, item = owner[order], item[order]
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    rank = np.arange(len(owner)) - np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
    idx1[owner[rank == 0]] = item[rank == 0]
    idx2[owner[rank == 1]] = item[rank == 1]
    return idx1, idx2


def _isolation(
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
    block = _offsets(ncand)
    pair_c = cand_off[obj_evt][pair_obj] + (np.arange(len(pair_obj)) - block[pair_obj])
    deta = c_eta[pair_c] - obj_eta[pair_obj]
    dphi = np.mod(c_phi[pair_c] - obj_phi[pair_obj] + np.pi, 2 * np.pi) - np.pi
    inside = (deta**2 + dphi**2 < radius[pair_obj] ** 2) & (pair_c != obj_self[pair_obj])
    return np.bincount(pair_obj, weights=np.where(inside, c_pt[pair_c], 0.0), minlength=n_obj)


def _btag(
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
    return np.where(abseta < 2.5, score, -1.0).astype(np.float32)


_BANNER_SILENCED = False


def _silence_fastjet_banner(fastjet: Any) -> None:
    """Run one tiny clustering with stdout closed: FastJet prints its banner only once."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    _BANNER_SILENCED = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        tiny = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]])
        jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
        fastjet.ClusterSequence(tiny, jetdef).inclusive_jets()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# ----------------------------------------------------------------------------- main entry


def simulate(
    batch: ak.Array, rng: np.random.Generator, config: DetectorConfig | None = None
) -> dict[str, Any]:
    """Turn one ``Pythia.nextBatch`` result into NanoAOD-like branches.

    Returns a dict of flat NumPy arrays (one value per event, e.g. ``MET_pt``) and jagged
    awkward record arrays (collections, e.g. ``Jet``), ready for
    :class:`~jetfm_coffea.generate.nanoaod_writer.NanoAODWriter`; the event-id branches
    are added by the caller.
    """
    cfg = config or DetectorConfig()
    fastjet = import_optional("fastjet")
    _silence_fastjet_banner(fastjet)
    prt = batch["prt"]
    n = len(prt)
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    off = _offsets(counts)
    evt = np.repeat(np.arange(n), counts)
    local = np.arange(len(evt)) - off[evt]
    flat = ak.flatten(prt)
    pid = ak.to_numpy(flat["id"]).astype(np.int32)
    status = ak.to_numpy(flat["status"]).astype(np.int32)
    mother1 = ak.to_numpy(flat["mother1"]).astype(np.int64)
    dau1 = ak.to_numpy(flat["daughter1"]).astype(np.int64)
    dau2 = ak.to_numpy(flat["daughter2"]).astype(np.int64)
    mom = flat["p"]
    px, py, pz, en = (ak.to_numpy(mom[c]).astype(np.float64) for c in ("px", "py", "pz", "e"))
    mass = ak.to_numpy(flat["m"]).astype(np.float64)
    aid = np.abs(pid)
    final = status > 0
    abs_status = np.abs(status)
    # kinematics only where needed: final state and GenPart candidates (~1/3 of the record)
    need = np.flatnonzero(
        final | ((abs_status >= 21) & (abs_status <= 29)) | np.isin(aid, (6, 15, 23, 24, 25))
    )
    pt, phi, eta = np.zeros(len(pid)), np.zeros(len(pid)), np.zeros(len(pid))
    pt[need] = np.hypot(px[need], py[need])
    phi[need] = np.arctan2(py[need], px[need])
    eta[need] = _eta(pt[need], pz[need])
    abseta = np.abs(eta)
    invisible = np.isin(aid, (12, 14, 16, 1000022, 1000039))
    charge = np.zeros(len(pid), dtype=np.int32)
    charge[final] = _charge(pid[final])

    # ---- particle-flow candidates
    visible = final & ~invisible
    is_mu, is_ele = aid == 13, aid == 11
    charged_had = (charge != 0) & ~is_mu & ~is_ele
    in_trk = abseta < cfg.tracker_eta_max
    in_calo = abseta < cfg.calo_eta_max
    in_hf = ~in_calo & (abseta < cfg.hf_eta_max) & (en > 3.0)
    cat = np.full(len(pid), -1, dtype=np.int8)
    cat[visible & is_mu & (abseta < cfg.muon_eta_max) & (pt > 0.5)] = _MU
    cat[visible & is_ele & in_trk & (pt > 0.3)] = _ELE
    cat[visible & charged_had & in_trk & (pt > 0.3)] = _CH
    ecal = (aid == 22) | is_ele
    cat[visible & ecal & (cat < 0) & ~(is_ele & in_trk) & in_calo & (en > 0.5)] = _PHO
    hadron = ~ecal & ~is_mu
    cat[visible & hadron & ~(charged_had & in_trk) & (cat < 0) & in_calo & (en > 1.0)] = _NH
    cat[visible & (cat < 0) & ~is_mu & in_hf] = _HF
    cand = np.flatnonzero(cat >= 0)
    c_evt = evt[cand]
    c_counts = np.bincount(c_evt, minlength=n)
    c_off = _offsets(c_counts)
    part2cand = np.full(len(pid), -1, dtype=np.int64)
    part2cand[cand] = np.arange(len(cand))
    c_cat = cat[cand]
    c_pt, c_eta, c_phi = pt[cand], eta[cand], phi[cand]

    # ---- ghosts: last B hadrons, then C hadrons
    hadron_code = np.flatnonzero((abs_status >= 81) & (aid > 100))
    is_b = np.zeros(len(pid), dtype=bool)
    is_c = np.zeros(len(pid), dtype=bool)
    is_b[hadron_code] = _has_quark(aid[hadron_code], 5)
    is_c[hadron_code] = _has_quark(aid[hadron_code], 4) & ~is_b[hadron_code]
    d1 = np.where(dau1 > 0, off[evt] + dau1, 0)
    d2 = np.where(dau2 > 0, off[evt] + dau2, 0)
    no_b_child = ~(((dau1 > 0) & is_b[d1]) | ((dau2 > 0) & is_b[d2]))
    no_c_child = ~(((dau1 > 0) & is_c[d1]) | ((dau2 > 0) & is_c[d2]))
    ghost_b = np.flatnonzero(is_b & no_b_child)
    ghost_c = np.flatnonzero(is_c & no_c_child)
    ghosts = np.concatenate([ghost_b, ghost_c])
    g_cat = np.concatenate(
        [np.full(len(ghost_b), _GB, np.int8), np.full(len(ghost_c), _GC, np.int8)]
    )

    # ---- clustering inputs: candidates + ghosts, event-ordered
    in_part = np.concatenate([cand, ghosts])
    in_evt = evt[in_part]
    order = np.argsort(in_evt, kind="stable")
    in_part, in_evt = in_part[order], in_evt[order]
    in_cat = np.concatenate([c_cat, g_cat])[order]
    in_cand = np.concatenate([np.arange(len(cand)), np.full(len(ghosts), -1)])[order]
    scale = np.where(in_cat >= _GB, _GHOST_SCALE, 1.0)
    in_counts = np.bincount(in_evt, minlength=n)
    in_off = _offsets(in_counts)
    in_e = en[in_part] * scale
    inputs = ak.unflatten(
        ak.zip(
            {
                "px": px[in_part] * scale,
                "py": py[in_part] * scale,
                "pz": pz[in_part] * scale,
                "E": in_e,
            }
        ),
        in_counts,
    )

    def cluster(radius: float, ptmin: float) -> dict[str, np.ndarray]:
        jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
        seq = fastjet.ClusterSequence(inputs, jetdef)
        jets = seq.inclusive_jets(ptmin)
        cidx = seq.constituent_index(ptmin)
        nj = ak.to_numpy(ak.num(jets)).astype(np.int64)
        fj = ak.flatten(jets)
        jpx, jpy, jpz, je = (ak.to_numpy(fj[c]).astype(np.float64) for c in ("px", "py", "pz", "E"))
        jevt = np.repeat(np.arange(n), nj)
        ncon = ak.to_numpy(ak.flatten(ak.num(cidx, axis=2))).astype(np.int64)
        con = ak.to_numpy(ak.flatten(cidx, axis=None)).astype(np.int64)
        owner = np.repeat(np.arange(len(jevt)), ncon)
        con = con + in_off[jevt[owner]]
        ccat = in_cat[con]
        nall = len(jevt)

        def frac(k: int) -> np.ndarray:
            return np.bincount(owner, weights=np.where(ccat == k, in_e[con], 0.0), minlength=nall)

        jpt = np.hypot(jpx, jpy)
        return {
            "evt": jevt,
            "px": jpx,
            "py": jpy,
            "pz": jpz,
            "e": je,
            "pt": jpt,
            "eta": _eta(jpt, jpz),
            "phi": np.arctan2(jpy, jpx),
            "mass": np.sqrt(np.maximum(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0)),
            "nb": np.bincount(owner, weights=ccat == _GB, minlength=nall).astype(np.int64),
            "nc": np.bincount(owner, weights=ccat == _GC, minlength=nall).astype(np.int64),
            "ncon": np.bincount(owner, weights=ccat < _GB, minlength=nall).astype(np.int64),
            "e_nh": frac(_NH) + frac(_HF),
            "e_pho": frac(_PHO),
            "e_mu": frac(_MU),
            "e_ele": frac(_ELE),
            "con": con,
            "owner": owner,
        }

    ak4 = cluster(cfg.jet_r, cfg.jet_raw_pt_min)
    ak8 = cluster(cfg.fatjet_r, cfg.fatjet_raw_pt_min)
    out: dict[str, Any] = {}

    # ---- AK4 jets: GenJet (raw) and Jet (smeared)
    raw_order = _sort_within_events(ak4["evt"], ak4["pt"])
    raw_rank = np.empty(len(raw_order), dtype=np.int64)
    raw_rank[raw_order] = _local_index(ak4["evt"][raw_order], n)
    jflav = np.where(ak4["nb"] > 0, 5, np.where(ak4["nc"] > 0, 4, 0)).astype(np.int32)
    out["GenJet"] = _jagged(
        ak4["evt"][raw_order],
        n,
        {
            "pt": ak4["pt"][raw_order].astype(np.float32),
            "eta": ak4["eta"][raw_order].astype(np.float32),
            "phi": ak4["phi"][raw_order].astype(np.float32),
            "mass": ak4["mass"][raw_order].astype(np.float32),
            "hadronFlavour": jflav[raw_order].astype(np.uint8),
        },
    )
    jabseta = np.abs(ak4["eta"])
    jscale = _scale(rng, _jet_sigma(ak4["pt"], jabseta))
    j_pt = ak4["pt"] * jscale
    e_jet = np.maximum(ak4["e"], 1e-9)
    tight = (ak4["e_nh"] / e_jet < 0.9) & (ak4["e_pho"] / e_jet < 0.9) & (ak4["ncon"] > 1)
    lepveto = (ak4["e_mu"] / e_jet < 0.8) & (ak4["e_ele"] / e_jet < 0.8)
    jet_id = (2 * tight + 4 * (tight & lepveto)).astype(np.int32)
    btag = _btag(rng, jflav, jabseta, cfg)
    keep_jet = (j_pt > cfg.jet_pt_min) & (jabseta < cfg.jet_eta_max)
    kj = np.flatnonzero(keep_jet)
    kj = kj[_sort_within_events(ak4["evt"][kj], j_pt[kj])]
    jet_out_idx = np.full(len(j_pt), -1, dtype=np.int64)
    jet_out_idx[kj] = _local_index(ak4["evt"][kj], n)
    jet_global_out = np.full(len(j_pt), -1, dtype=np.int64)
    jet_global_out[kj] = np.arange(len(kj))
    # which jet each candidate belongs to
    cand_jet = np.full(len(cand), -1, dtype=np.int64)
    real = in_cand[ak4["con"]] >= 0
    cand_jet[in_cand[ak4["con"]][real]] = ak4["owner"][real]

    # ---- leptons and photons (truth -> reco)
    def select(mask: np.ndarray, eff: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(mask)
        return idx[rng.random(len(idx)) < eff[idx]]

    mu = select(
        final & is_mu & (abseta < cfg.muon_eta_max) & (pt > cfg.muon_pt_min),
        np.where(pt > 10.0, 0.98, 0.90),
    )
    el = select(
        final & is_ele & (abseta < cfg.electron_eta_max) & (pt > cfg.electron_pt_min),
        np.where(pt < 10.0, 0.80, np.where(abseta < 1.479, 0.95, 0.90)),
    )
    ph = select(
        final & (aid == 22) & (abseta < cfg.photon_eta_max) & (pt > cfg.photon_pt_min),
        np.full(len(pid), 0.95),
    )
    objs = np.concatenate([mu, el, ph])
    radius = np.concatenate([np.full(len(mu), 0.4), np.full(len(el), 0.3), np.full(len(ph), 0.3)])
    iso = _isolation(
        evt[objs], eta[objs], phi[objs], part2cand[objs], radius, c_off, c_eta, c_phi, c_pt
    ) / np.maximum(pt[objs], 1e-9)
    iso_mu, iso_el, iso_ph = np.split(iso, [len(mu), len(mu) + len(el)])

    # ---- GenPart (needed for the genPartIdx cross-references)
    last_copy = ~(((dau1 > 0) & (pid[d1] == pid)) | ((dau2 > 0) & (pid[d2] == pid)))
    keep_gen = (
        ((abs_status >= 21) & (abs_status <= 29))
        | (last_copy & np.isin(aid, (6, 15, 23, 24, 25)))
        | (final & np.isin(aid, (11, 12, 13, 14, 16)) & (pt > 3.0))
        | (final & (aid == 22) & (pt > 10.0))
    )
    gen = np.flatnonzero(keep_gen)
    gen_local = _local_index(evt[gen], n)
    part2gen = np.full(len(pid), -1, dtype=np.int64)
    part2gen[gen] = gen_local
    m = off[evt[gen]] + mother1[gen]
    todo = (mother1[gen] > 0) & ~keep_gen[m]
    for _ in range(10_000):  # mother chains are finite; the cap only guards bad records
        if not todo.any():
            break
        m[todo] = off[evt[gen[todo]]] + mother1[m[todo]]
        todo = todo & (local[m] > 0) & ~keep_gen[m]
    gmother = np.where((local[m] > 0) & keep_gen[m], part2gen[m], -1).astype(np.int32)
    g_prompt = ~((abs_status >= 91) & (abs_status <= 99))
    flags = (
        g_prompt.astype(np.int32)
        | (((abs_status >= 21) & (abs_status <= 29)).astype(np.int32) << 7)
        | (last_copy.astype(np.int32) << 13)
    )
    g_status = np.where(final, 1, np.where((aid == 15) | (abs_status >= 81), 2, abs_status))
    out["GenPart"] = _jagged(
        evt[gen],
        n,
        {
            "pt": pt[gen].astype(np.float32),
            "eta": eta[gen].astype(np.float32),
            "phi": phi[gen].astype(np.float32),
            "mass": mass[gen].astype(np.float32),
            "pdgId": pid[gen],
            "status": g_status[gen].astype(np.int32),
            "statusFlags": flags[gen],
            "genPartIdxMother": gmother,
        },
    )

    def lepton_like(idx: np.ndarray, sigma: np.ndarray) -> dict[str, np.ndarray]:
        s = _scale(rng, sigma)
        return {"pt": pt[idx] * s, "mass": mass[idx], "evt": evt[idx], "idx": idx}

    mu_r = lepton_like(mu, _muon_sigma(pt[mu], abseta[mu]))
    el_r = lepton_like(el, _ecal_sigma(en[el], abseta[el]))
    ph_r = lepton_like(ph, _ecal_sigma(en[ph], abseta[ph]))

    def order_objects(r: dict[str, np.ndarray]) -> np.ndarray:
        return _sort_within_events(r["evt"], r["pt"])

    def jet_of(idx: np.ndarray) -> np.ndarray:
        c = part2cand[idx]
        j = np.where(c >= 0, cand_jet[np.maximum(c, 0)], -1)
        return np.where(j >= 0, jet_out_idx[np.maximum(j, 0)], -1).astype(np.int32)

    def jet_global(idx: np.ndarray) -> np.ndarray:
        c = part2cand[idx]
        j = np.where(c >= 0, cand_jet[np.maximum(c, 0)], -1)
        return np.where(j >= 0, jet_global_out[np.maximum(j, 0)], -1)

    mo = order_objects(mu_r)
    mu_idx = mu[mo]
    mu_local = _local_index(evt[mu_idx], n)
    n_mu = len(mu_idx)
    tight_mu = rng.random(n_mu) < cfg.muon_tight_eff
    out["Muon"] = _jagged(
        evt[mu_idx],
        n,
        {
            "pt": mu_r["pt"][mo].astype(np.float32),
            "eta": eta[mu_idx].astype(np.float32),
            "phi": phi[mu_idx].astype(np.float32),
            "mass": np.full(n_mu, 0.10566, np.float32),
            "charge": charge[mu_idx],
            "pdgId": pid[mu_idx],
            "tightId": tight_mu,
            "looseId": np.ones(n_mu, dtype=bool),
            "pfRelIso04_all": iso_mu[mo].astype(np.float32),
            "jetIdx": jet_of(mu_idx),
            "genPartIdx": part2gen[mu_idx].astype(np.int32),
            "fsrPhotonIdx": np.full(n_mu, -1, np.int32),
        },
    )

    eo = order_objects(el_r)
    el_idx = el[eo]
    el_local = _local_index(evt[el_idx], n)
    n_el = len(el_idx)
    iso_grade = np.select(
        [iso_el[eo] < 0.0588, iso_el[eo] < 0.0695, iso_el[eo] < 0.112, iso_el[eo] < 0.198],
        [4, 3, 2, 1],
        0,
    )
    id_grade = rng.choice(5, size=n_el, p=[0.03, 0.03, 0.04, 0.05, 0.85])
    out["Electron"] = _jagged(
        evt[el_idx],
        n,
        {
            "pt": el_r["pt"][eo].astype(np.float32),
            "eta": eta[el_idx].astype(np.float32),
            "phi": phi[el_idx].astype(np.float32),
            "mass": np.full(n_el, 0.000511, np.float32),
            "charge": charge[el_idx],
            "pdgId": pid[el_idx],
            "cutBased": np.minimum(iso_grade, id_grade).astype(np.int32),
            "pfRelIso03_all": iso_el[eo].astype(np.float32),
            "jetIdx": jet_of(el_idx),
            "genPartIdx": part2gen[el_idx].astype(np.int32),
            "photonIdx": np.full(n_el, -1, np.int32),
        },
    )

    po = order_objects(ph_r)
    ph_idx = ph[po]
    n_ph = len(ph_idx)
    iso_grade = np.select([iso_ph[po] < 0.07, iso_ph[po] < 0.10, iso_ph[po] < 0.15], [3, 2, 1], 0)
    id_grade = rng.choice(4, size=n_ph, p=[0.05, 0.05, 0.10, 0.80])
    out["Photon"] = _jagged(
        evt[ph_idx],
        n,
        {
            "pt": ph_r["pt"][po].astype(np.float32),
            "eta": eta[ph_idx].astype(np.float32),
            "phi": phi[ph_idx].astype(np.float32),
            "cutBased": np.minimum(iso_grade, id_grade).astype(np.int32),
            "pfRelIso03_all": iso_ph[po].astype(np.float32),
            "jetIdx": jet_of(ph_idx),
            "genPartIdx": part2gen[ph_idx].astype(np.int32),
            "electronIdx": np.full(n_ph, -1, np.int32),
        },
    )

    mu1, mu2 = _first_two(jet_global(mu_idx), mu_local, len(kj))
    el1, el2 = _first_two(jet_global(el_idx), el_local, len(kj))
    out["Jet"] = _jagged(
        ak4["evt"][kj],
        n,
        {
            "pt": j_pt[kj].astype(np.float32),
            "eta": ak4["eta"][kj].astype(np.float32),
            "phi": ak4["phi"][kj].astype(np.float32),
            "mass": (ak4["mass"][kj] * jscale[kj]).astype(np.float32),
            "btagDeepFlavB": btag[kj],
            "hadronFlavour": jflav[kj],
            "jetId": jet_id[kj],
            "nConstituents": np.minimum(ak4["ncon"][kj], 255).astype(np.uint8),
            "genJetIdx": raw_rank[kj].astype(np.int32),
            "muonIdx1": mu1,
            "muonIdx2": mu2,
            "electronIdx1": el1,
            "electronIdx2": el2,
        },
    )

    # ---- AK8 jets
    fraw = _sort_within_events(ak8["evt"], ak8["pt"])
    f_rank = np.empty(len(fraw), dtype=np.int64)
    f_rank[fraw] = _local_index(ak8["evt"][fraw], n)
    out["GenJetAK8"] = _jagged(
        ak8["evt"][fraw],
        n,
        {
            "pt": ak8["pt"][fraw].astype(np.float32),
            "eta": ak8["eta"][fraw].astype(np.float32),
            "phi": ak8["phi"][fraw].astype(np.float32),
            "mass": ak8["mass"][fraw].astype(np.float32),
        },
    )
    fabseta = np.abs(ak8["eta"])
    fscale = _scale(rng, _jet_sigma(ak8["pt"], fabseta))
    f_pt = ak8["pt"] * fscale
    kf = np.flatnonzero((f_pt > cfg.fatjet_pt_min) & (fabseta < cfg.jet_eta_max))
    kf = kf[_sort_within_events(ak8["evt"][kf], f_pt[kf])]
    n_f = len(kf)
    out["FatJet"] = _jagged(
        ak8["evt"][kf],
        n,
        {
            "pt": f_pt[kf].astype(np.float32),
            "eta": ak8["eta"][kf].astype(np.float32),
            "phi": ak8["phi"][kf].astype(np.float32),
            "mass": (ak8["mass"][kf] * fscale[kf]).astype(np.float32),
            "nBHadrons": np.minimum(ak8["nb"][kf], 255).astype(np.uint8),
            "nCHadrons": np.minimum(ak8["nc"][kf], 255).astype(np.uint8),
            "genJetAK8Idx": f_rank[kf].astype(np.int32),
            "subJetIdx1": np.full(n_f, -1, np.int32),
            "subJetIdx2": np.full(n_f, -1, np.int32),
        },
    )

    # ---- candidates (smeared) and MET
    c_e = en[cand]
    c_scale = _scale(rng, _cand_sigma(c_cat, c_pt, c_e, np.abs(c_eta)))
    outside = cand_jet < 0
    met_x = -np.bincount(ak4["evt"], weights=ak4["px"] * jscale, minlength=n)
    met_y = -np.bincount(ak4["evt"], weights=ak4["py"] * jscale, minlength=n)
    met_x -= np.bincount(c_evt, weights=np.where(outside, px[cand] * c_scale, 0.0), minlength=n)
    met_y -= np.bincount(c_evt, weights=np.where(outside, py[cand] * c_scale, 0.0), minlength=n)
    sum_et = np.bincount(ak4["evt"], weights=j_pt, minlength=n) + np.bincount(
        c_evt, weights=np.where(outside, c_pt * c_scale, 0.0), minlength=n
    )
    out["MET_pt"] = np.hypot(met_x, met_y).astype(np.float32)
    out["MET_phi"] = np.arctan2(met_y, met_x).astype(np.float32)
    out["MET_sumEt"] = sum_et.astype(np.float32)
    nu = final & invisible
    gx = np.bincount(evt, weights=np.where(nu, px, 0.0), minlength=n)
    gy = np.bincount(evt, weights=np.where(nu, py, 0.0), minlength=n)
    out["GenMET_pt"] = np.hypot(gx, gy).astype(np.float32)
    out["GenMET_phi"] = np.arctan2(gy, gx).astype(np.float32)
    if cfg.pfcands:
        lepton = (c_cat == _ELE) | (c_cat == _MU)
        pf_sign = np.where(c_cat == _CH, charge[cand], np.where(lepton, np.sign(pid[cand]), 1))
        out["PFCands"] = _jagged(
            c_evt,
            n,
            {
                "pt": (c_pt * c_scale).astype(np.float32),
                "eta": c_eta.astype(np.float32),
                "phi": c_phi.astype(np.float32),
                "mass": np.where(
                    c_cat == _CH, 0.13957, np.where(c_cat == _MU, 0.10566, 0.0)
                ).astype(np.float32),
                "charge": np.where(np.isin(c_cat, (_CH, _ELE, _MU)), charge[cand], 0).astype(
                    np.int32
                ),
                "pdgId": (_PF_PDGID[c_cat] * pf_sign).astype(np.int32),
            },
        )

    # ---- collections NanoAODSchema cross-references but that are not simulated
    f32, i32 = np.float32, np.int32
    out["Tau"] = _empty(
        n,
        {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "decayMode": i32,
         "genPartIdx": i32, "jetIdx": i32},
    )  # fmt: skip
    out["LowPtElectron"] = _empty(
        n,
        {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "electronIdx": i32,
         "genPartIdx": i32, "photonIdx": i32},
    )  # fmt: skip
    out["FsrPhoton"] = _empty(n, {"pt": f32, "eta": f32, "phi": f32, "muonIdx": i32})
    out["GenVisTau"] = _empty(
        n,
        {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "status": i32,
         "genPartIdxMother": i32},
    )  # fmt: skip
    out["SubJet"] = _empty(n, {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "btagDeepB": f32})
    return out
