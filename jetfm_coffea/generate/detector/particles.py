"""The one particle record of a batch, its particle-flow candidates and ghost hadrons."""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from jetfm_coffea.generate.detector.arrays import (
    event_offsets,
)
from jetfm_coffea.generate.detector.config import (
    DetectorConfig,
)
from jetfm_coffea.generate.detector.physics import (
    CAT_CHARGED,
    CAT_ELECTRON,
    CAT_GHOST_B,
    CAT_GHOST_C,
    CAT_HF,
    CAT_MUON,
    CAT_NEUTRAL,
    CAT_PHOTON,
    charge_of,
    has_quark,
    pseudorapidity,
)

__all__ = ["Candidates", "Particles", "ghost_hadrons", "particle_record", "pf_candidates"]


@dataclass
class Particles:
    """The one particle record of a batch: flat arrays over every particle of every event.

    ``evt`` is each particle's event, ``off`` the events' first rows, ``local`` the row in
    its event; ``d1``/``d2`` are the global rows of the daughters (0 where there is none).
    Kinematics (``pt``, ``eta``, ``phi``) are computed only where needed (final state and
    GenPart candidates) and zero elsewhere.
    """

    n: int
    evt: np.ndarray
    off: np.ndarray
    local: np.ndarray
    pid: np.ndarray
    aid: np.ndarray
    status: np.ndarray
    abs_status: np.ndarray
    mother1: np.ndarray
    dau1: np.ndarray
    dau2: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    en: np.ndarray
    mass: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    abseta: np.ndarray
    final: np.ndarray
    invisible: np.ndarray
    charge: np.ndarray


def particle_record(batch: ak.Array) -> Particles:
    """Flatten one ``Pythia.nextBatch`` result into a :class:`Particles` record."""
    prt = batch["prt"]
    n = len(prt)
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    off = event_offsets(counts)
    evt = np.repeat(np.arange(n), counts)
    flat = ak.flatten(prt)
    pid = ak.to_numpy(flat["id"]).astype(np.int32)
    status = ak.to_numpy(flat["status"]).astype(np.int32)
    dau1 = ak.to_numpy(flat["daughter1"]).astype(np.int64)
    dau2 = ak.to_numpy(flat["daughter2"]).astype(np.int64)
    mom = flat["p"]
    px, py, pz, en = (ak.to_numpy(mom[c]).astype(np.float64) for c in ("px", "py", "pz", "e"))
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
    eta[need] = pseudorapidity(pt[need], pz[need])
    charge = np.zeros(len(pid), dtype=np.int32)
    charge[final] = charge_of(pid[final])
    return Particles(
        n=n,
        evt=evt,
        off=off,
        local=np.arange(len(evt)) - off[evt],
        pid=pid,
        aid=aid,
        status=status,
        abs_status=abs_status,
        mother1=ak.to_numpy(flat["mother1"]).astype(np.int64),
        dau1=dau1,
        dau2=dau2,
        d1=np.where(dau1 > 0, off[evt] + dau1, 0),
        d2=np.where(dau2 > 0, off[evt] + dau2, 0),
        px=px,
        py=py,
        pz=pz,
        en=en,
        mass=ak.to_numpy(flat["m"]).astype(np.float64),
        pt=pt,
        eta=eta,
        phi=phi,
        abseta=np.abs(eta),
        final=final,
        invisible=np.isin(aid, (12, 14, 16, 1000022, 1000039)),
        charge=charge,
    )


@dataclass
class Candidates:
    """Particle-flow candidates: their particles (``index``), event, category, kinematics."""

    index: np.ndarray
    evt: np.ndarray
    off: np.ndarray
    cat: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    of_particle: np.ndarray  # candidate row of each particle, -1 for none


def pf_candidates(p: Particles, cfg: DetectorConfig) -> Candidates:
    """The visible particles inside the detector and above its thresholds, by category."""
    visible = p.final & ~p.invisible
    is_mu, is_ele = p.aid == 13, p.aid == 11
    charged_had = (p.charge != 0) & ~is_mu & ~is_ele
    abseta, pt, en = p.abseta, p.pt, p.en
    in_trk = abseta < cfg.tracker_eta_max
    in_calo = abseta < cfg.calo_eta_max
    in_hf = ~in_calo & (abseta < cfg.hf_eta_max) & (en > cfg.cand_hf_e_min)
    cat = np.full(len(p.pid), -1, dtype=np.int8)
    cat[visible & is_mu & (abseta < cfg.muon_eta_max) & (pt > cfg.cand_muon_pt_min)] = CAT_MUON
    cat[visible & is_ele & in_trk & (pt > cfg.cand_track_pt_min)] = CAT_ELECTRON
    cat[visible & charged_had & in_trk & (pt > cfg.cand_track_pt_min)] = CAT_CHARGED
    ecal = (p.aid == 22) | is_ele
    photon = ecal & (cat < 0) & ~(is_ele & in_trk) & in_calo & (en > cfg.cand_photon_e_min)
    cat[visible & photon] = CAT_PHOTON
    hadron = ~ecal & ~is_mu & ~(charged_had & in_trk) & (cat < 0) & in_calo
    cat[visible & hadron & (en > cfg.cand_neutral_e_min)] = CAT_NEUTRAL
    cat[visible & (cat < 0) & ~is_mu & in_hf] = CAT_HF
    cand = np.flatnonzero(cat >= 0)
    c_evt = p.evt[cand]
    of_particle = np.full(len(p.pid), -1, dtype=np.int64)
    of_particle[cand] = np.arange(len(cand))
    return Candidates(
        index=cand,
        evt=c_evt,
        off=event_offsets(np.bincount(c_evt, minlength=p.n)),
        cat=cat[cand],
        pt=p.pt[cand],
        eta=p.eta[cand],
        phi=p.phi[cand],
        of_particle=of_particle,
    )


def ghost_hadrons(p: Particles) -> tuple[np.ndarray, np.ndarray]:
    """The last B hadrons, then the last C hadrons (rows, and their ghost categories)."""
    hadron_code = np.flatnonzero((p.abs_status >= 81) & (p.aid > 100))
    is_b = np.zeros(len(p.pid), dtype=bool)
    is_c = np.zeros(len(p.pid), dtype=bool)
    is_b[hadron_code] = has_quark(p.aid[hadron_code], 5)
    is_c[hadron_code] = has_quark(p.aid[hadron_code], 4) & ~is_b[hadron_code]
    has1, has2 = p.dau1 > 0, p.dau2 > 0
    no_b_child = ~((has1 & is_b[p.d1]) | (has2 & is_b[p.d2]))
    no_c_child = ~((has1 & is_c[p.d1]) | (has2 & is_c[p.d2]))
    ghost_b = np.flatnonzero(is_b & no_b_child)
    ghost_c = np.flatnonzero(is_c & no_c_child)
    cats = np.concatenate(
        [np.full(len(ghost_b), CAT_GHOST_B, np.int8), np.full(len(ghost_c), CAT_GHOST_C, np.int8)]
    )
    return np.concatenate([ghost_b, ghost_c]), cats
