"""Muons, electrons, photons, GenPart, MET (and PFCands), and the empty collections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea.generate.detector.arrays import (
    empty_collection,
    first_two,
    jagged,
    local_index,
    sort_within_events,
)
from jetfm_coffea.generate.detector.config import (
    DetectorConfig,
)
from jetfm_coffea.generate.detector.jets import (
    Ak4Jets,
    jet_of,
)
from jetfm_coffea.generate.detector.particles import (
    Candidates,
    Particles,
)
from jetfm_coffea.generate.detector.physics import (
    CAT_CHARGED,
    CAT_ELECTRON,
    CAT_MUON,
    ELECTRON_MASS,
    MUON_MASS,
    PF_PDGID,
    PION_MASS,
    candidate_sigma,
    ecal_sigma,
    isolation_sum,
    muon_sigma,
    response,
)

__all__ = [
    "Reconstructed",
    "electron_collection",
    "empty_collections",
    "gen_particles",
    "jet_collection",
    "missing_energy",
    "muon_collection",
    "photon_collection",
    "reconstruct_leptons",
]


@dataclass
class Reconstructed:
    """Reconstructed muons, electrons or photons: particle rows (pT-ordered), smeared pT,
    relative isolation."""

    index: np.ndarray
    pt: np.ndarray
    iso: np.ndarray


def reconstruct_leptons(
    rng: np.random.Generator, p: Particles, cands: Candidates, cfg: DetectorConfig
) -> tuple[Reconstructed, Reconstructed, Reconstructed]:
    """Truth muons, electrons, photons -> reconstructed ones: acceptance and efficiency,
    isolation, resolution (random draws: the three efficiencies, then the three smearings)."""
    pt, abseta = p.pt, p.abseta

    def select(mask: np.ndarray, eff: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(mask)
        return idx[rng.random(len(idx)) < eff[idx]]

    mu = select(
        p.final & (p.aid == 13) & (abseta < cfg.muon_eta_max) & (pt > cfg.muon_pt_min),
        np.where(pt > cfg.muon_eff_pt, cfg.muon_eff_high, cfg.muon_eff_low),
    )
    el = select(
        p.final & (p.aid == 11) & (abseta < cfg.electron_eta_max) & (pt > cfg.electron_pt_min),
        np.where(
            pt < cfg.electron_eff_pt,
            cfg.electron_eff_low,
            np.where(
                abseta < cfg.ecal_barrel_eta_max, cfg.electron_eff_barrel, cfg.electron_eff_endcap
            ),
        ),
    )
    ph = select(
        p.final & (p.aid == 22) & (abseta < cfg.photon_eta_max) & (pt > cfg.photon_pt_min),
        np.full(len(p.pid), cfg.photon_eff),
    )
    objs = np.concatenate([mu, el, ph])
    radius = np.concatenate(
        [
            np.full(len(mu), cfg.muon_iso_r),
            np.full(len(el), cfg.egamma_iso_r),
            np.full(len(ph), cfg.egamma_iso_r),
        ]
    )
    iso = isolation_sum(
        p.evt[objs],
        p.eta[objs],
        p.phi[objs],
        cands.of_particle[objs],
        radius,
        cands.off,
        cands.eta,
        cands.phi,
        cands.pt,
    ) / np.maximum(pt[objs], 1e-9)
    isos = np.split(iso, [len(mu), len(mu) + len(el)])
    sigmas = (
        muon_sigma(pt[mu], abseta[mu]),
        ecal_sigma(p.en[el], abseta[el]),
        ecal_sigma(p.en[ph], abseta[ph]),
    )
    out = []
    for idx, sigma, obj_iso in zip((mu, el, ph), sigmas, isos, strict=True):
        smeared = pt[idx] * response(rng, sigma)
        order = sort_within_events(p.evt[idx], smeared)
        out.append(Reconstructed(idx[order], smeared[order], obj_iso[order]))
    return out[0], out[1], out[2]


def gen_particles(p: Particles, cfg: DetectorConfig) -> tuple[ak.Array, np.ndarray]:
    """``GenPart`` (hard process, last copies of t/τ/Z/W/H, final leptons and photons) with
    mothers re-pointed to the nearest kept ancestor, and each particle's GenPart index."""
    aid, abs_status, final = p.aid, p.abs_status, p.final
    last_copy = ~(((p.dau1 > 0) & (p.pid[p.d1] == p.pid)) | ((p.dau2 > 0) & (p.pid[p.d2] == p.pid)))
    keep_gen = (
        ((abs_status >= 21) & (abs_status <= 29))
        | (last_copy & np.isin(aid, (6, 15, 23, 24, 25)))
        | (final & np.isin(aid, (11, 12, 13, 14, 16)) & (p.pt > cfg.gen_lepton_pt_min))
        | (final & (aid == 22) & (p.pt > cfg.gen_photon_pt_min))
    )
    gen = np.flatnonzero(keep_gen)
    part2gen = np.full(len(p.pid), -1, dtype=np.int64)
    part2gen[gen] = local_index(p.evt[gen], p.n)
    m = p.off[p.evt[gen]] + p.mother1[gen]
    todo = (p.mother1[gen] > 0) & ~keep_gen[m]
    for _ in range(10_000):  # mother chains are finite; the cap only guards bad records
        if not todo.any():
            break
        m[todo] = p.off[p.evt[gen[todo]]] + p.mother1[m[todo]]
        todo = todo & (p.local[m] > 0) & ~keep_gen[m]
    mother = np.where((p.local[m] > 0) & keep_gen[m], part2gen[m], -1).astype(np.int32)
    prompt = ~((abs_status >= 91) & (abs_status <= 99))
    flags = (
        prompt.astype(np.int32)
        | (((abs_status >= 21) & (abs_status <= 29)).astype(np.int32) << 7)
        | (last_copy.astype(np.int32) << 13)
    )
    status = np.where(final, 1, np.where((aid == 15) | (abs_status >= 81), 2, abs_status))
    collection = jagged(
        p.evt[gen],
        p.n,
        {
            "pt": p.pt[gen].astype(np.float32),
            "eta": p.eta[gen].astype(np.float32),
            "phi": p.phi[gen].astype(np.float32),
            "mass": p.mass[gen].astype(np.float32),
            "pdgId": p.pid[gen],
            "status": status[gen].astype(np.int32),
            "statusFlags": flags[gen],
            "genPartIdxMother": mother,
        },
    )
    return collection, part2gen


def muon_collection(
    rng: np.random.Generator,
    p: Particles,
    mu: Reconstructed,
    cands: Candidates,
    jets: Ak4Jets,
    part2gen: np.ndarray,
    cfg: DetectorConfig,
) -> ak.Array:
    """``Muon`` (draws the tight identification)."""
    idx, n_mu = mu.index, len(mu.index)
    return jagged(
        p.evt[idx],
        p.n,
        {
            "pt": mu.pt.astype(np.float32),
            "eta": p.eta[idx].astype(np.float32),
            "phi": p.phi[idx].astype(np.float32),
            "mass": np.full(n_mu, MUON_MASS, np.float32),
            "charge": p.charge[idx],
            "pdgId": p.pid[idx],
            "tightId": rng.random(n_mu) < cfg.muon_tight_eff,
            "looseId": np.ones(n_mu, dtype=bool),
            "pfRelIso04_all": mu.iso.astype(np.float32),
            "jetIdx": jet_of(idx, cands, jets, jets.out_index).astype(np.int32),
            "genPartIdx": part2gen[idx].astype(np.int32),
            "fsrPhotonIdx": np.full(n_mu, -1, np.int32),
        },
    )


def _cut_based(rng: np.random.Generator, iso: np.ndarray, bounds: tuple, probs: tuple) -> Any:
    """The lower of a drawn identification grade and the isolation grade."""
    top = len(bounds)
    iso_grade = np.select([iso < b for b in bounds], list(range(top, 0, -1)), 0)
    id_grade = rng.choice(len(probs), size=len(iso), p=list(probs))
    return np.minimum(iso_grade, id_grade).astype(np.int32)


def electron_collection(
    rng: np.random.Generator,
    p: Particles,
    el: Reconstructed,
    cands: Candidates,
    jets: Ak4Jets,
    part2gen: np.ndarray,
    cfg: DetectorConfig,
) -> ak.Array:
    """``Electron`` (draws the identification grade of ``cutBased``)."""
    idx, n_el = el.index, len(el.index)
    return jagged(
        p.evt[idx],
        p.n,
        {
            "pt": el.pt.astype(np.float32),
            "eta": p.eta[idx].astype(np.float32),
            "phi": p.phi[idx].astype(np.float32),
            "mass": np.full(n_el, ELECTRON_MASS, np.float32),
            "charge": p.charge[idx],
            "pdgId": p.pid[idx],
            "cutBased": _cut_based(rng, el.iso, cfg.electron_iso_bounds, cfg.electron_id_probs),
            "pfRelIso03_all": el.iso.astype(np.float32),
            "jetIdx": jet_of(idx, cands, jets, jets.out_index).astype(np.int32),
            "genPartIdx": part2gen[idx].astype(np.int32),
            "photonIdx": np.full(n_el, -1, np.int32),
        },
    )


def photon_collection(
    rng: np.random.Generator,
    p: Particles,
    ph: Reconstructed,
    cands: Candidates,
    jets: Ak4Jets,
    part2gen: np.ndarray,
    cfg: DetectorConfig,
) -> ak.Array:
    """``Photon`` (draws the identification grade of ``cutBased``)."""
    idx, n_ph = ph.index, len(ph.index)
    return jagged(
        p.evt[idx],
        p.n,
        {
            "pt": ph.pt.astype(np.float32),
            "eta": p.eta[idx].astype(np.float32),
            "phi": p.phi[idx].astype(np.float32),
            "cutBased": _cut_based(rng, ph.iso, cfg.photon_iso_bounds, cfg.photon_id_probs),
            "pfRelIso03_all": ph.iso.astype(np.float32),
            "jetIdx": jet_of(idx, cands, jets, jets.out_index).astype(np.int32),
            "genPartIdx": part2gen[idx].astype(np.int32),
            "electronIdx": np.full(n_ph, -1, np.int32),
        },
    )


def missing_energy(
    rng: np.random.Generator, p: Particles, cands: Candidates, jets: Ak4Jets, cfg: DetectorConfig
) -> dict[str, Any]:
    """MET from the smeared jets and the smeared candidates outside them (draws the
    candidates' response), ``GenMET`` from the invisible particles, ``PFCands`` if asked."""
    n, raw, cand = p.n, jets.raw, cands.index
    c_scale = response(rng, candidate_sigma(cands.cat, cands.pt, p.en[cand], np.abs(cands.eta)))
    outside = jets.of_candidate < 0
    met_x = -np.bincount(raw["evt"], weights=raw["px"] * jets.scale, minlength=n)
    met_y = -np.bincount(raw["evt"], weights=raw["py"] * jets.scale, minlength=n)
    met_x -= np.bincount(
        cands.evt, weights=np.where(outside, p.px[cand] * c_scale, 0.0), minlength=n
    )
    met_y -= np.bincount(
        cands.evt, weights=np.where(outside, p.py[cand] * c_scale, 0.0), minlength=n
    )
    sum_et = np.bincount(raw["evt"], weights=jets.pt, minlength=n) + np.bincount(
        cands.evt, weights=np.where(outside, cands.pt * c_scale, 0.0), minlength=n
    )
    out: dict[str, Any] = {
        "MET_pt": np.hypot(met_x, met_y).astype(np.float32),
        "MET_phi": np.arctan2(met_y, met_x).astype(np.float32),
        "MET_sumEt": sum_et.astype(np.float32),
    }
    nu = p.final & p.invisible
    gx = np.bincount(p.evt, weights=np.where(nu, p.px, 0.0), minlength=n)
    gy = np.bincount(p.evt, weights=np.where(nu, p.py, 0.0), minlength=n)
    out["GenMET_pt"] = np.hypot(gx, gy).astype(np.float32)
    out["GenMET_phi"] = np.arctan2(gy, gx).astype(np.float32)
    if cfg.pfcands:
        c_cat = cands.cat
        lepton = (c_cat == CAT_ELECTRON) | (c_cat == CAT_MUON)
        pf_sign = np.where(
            c_cat == CAT_CHARGED, p.charge[cand], np.where(lepton, np.sign(p.pid[cand]), 1)
        )
        out["PFCands"] = jagged(
            cands.evt,
            n,
            {
                "pt": (cands.pt * c_scale).astype(np.float32),
                "eta": cands.eta.astype(np.float32),
                "phi": cands.phi.astype(np.float32),
                "mass": np.where(
                    c_cat == CAT_CHARGED, PION_MASS, np.where(c_cat == CAT_MUON, MUON_MASS, 0.0)
                ).astype(np.float32),
                "charge": np.where(
                    np.isin(c_cat, (CAT_CHARGED, CAT_ELECTRON, CAT_MUON)), p.charge[cand], 0
                ).astype(np.int32),
                "pdgId": (PF_PDGID[c_cat] * pf_sign).astype(np.int32),
            },
        )
    return out


def empty_collections(n: int) -> dict[str, ak.Array]:
    """Collections NanoAODSchema cross-references but that are not simulated."""
    f32, i32 = np.float32, np.int32
    return {
        "Tau": empty_collection(
            n,
            {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "decayMode": i32,
             "genPartIdx": i32, "jetIdx": i32},
        ),
        "LowPtElectron": empty_collection(
            n,
            {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "electronIdx": i32,
             "genPartIdx": i32, "photonIdx": i32},
        ),
        "FsrPhoton": empty_collection(n, {"pt": f32, "eta": f32, "phi": f32, "muonIdx": i32}),
        "GenVisTau": empty_collection(
            n,
            {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "charge": i32, "status": i32,
             "genPartIdxMother": i32},
        ),
        "SubJet": empty_collection(
            n, {"pt": f32, "eta": f32, "phi": f32, "mass": f32, "btagDeepB": f32}
        ),
    }  # fmt: skip


def jet_collection(
    p: Particles, jets: Ak4Jets, mu: Reconstructed, el: Reconstructed, cands: Candidates
) -> ak.Array:
    """``Jet``: the kept smeared AK4 jets with their first two muons and electrons."""
    kj, raw = jets.kept, jets.raw
    mu_local = local_index(p.evt[mu.index], p.n)
    el_local = local_index(p.evt[el.index], p.n)
    mu1, mu2 = first_two(jet_of(mu.index, cands, jets, jets.global_index), mu_local, len(kj))
    el1, el2 = first_two(jet_of(el.index, cands, jets, jets.global_index), el_local, len(kj))
    return jagged(
        raw["evt"][kj],
        p.n,
        {
            "pt": jets.pt[kj].astype(np.float32),
            "eta": raw["eta"][kj].astype(np.float32),
            "phi": raw["phi"][kj].astype(np.float32),
            "mass": (raw["mass"][kj] * jets.scale[kj]).astype(np.float32),
            "btagDeepFlavB": jets.btag[kj],
            "hadronFlavour": jets.flavour[kj],
            "jetId": jets.jet_id[kj],
            "nConstituents": np.minimum(raw["ncon"][kj], 255).astype(np.uint8),
            "genJetIdx": jets.raw_rank[kj].astype(np.int32),
            "muonIdx1": mu1,
            "muonIdx2": mu2,
            "electronIdx1": el1,
            "electronIdx2": el2,
        },
    )
