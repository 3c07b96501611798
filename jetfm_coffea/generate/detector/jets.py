"""Jets: FastJet clustering of the candidates (+ ghosts), smearing, ID, b tag, collections."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea.generate.detector.arrays import (
    event_offsets,
    jagged,
    local_index,
    sort_within_events,
)
from jetfm_coffea.generate.detector.config import (
    DetectorConfig,
)
from jetfm_coffea.generate.detector.particles import (
    Candidates,
    Particles,
)
from jetfm_coffea.generate.detector.physics import (
    CAT_ELECTRON,
    CAT_GHOST_B,
    CAT_GHOST_C,
    CAT_HF,
    CAT_MUON,
    CAT_NEUTRAL,
    CAT_PHOTON,
    GHOST_SCALE,
    btag_scores,
    jet_sigma,
    pseudorapidity,
    response,
)

__all__ = [
    "Ak4Jets",
    "ClusterInputs",
    "cluster",
    "cluster_inputs",
    "fat_jets",
    "gen_jets",
    "smear_jets",
]


_BANNER_SILENCED = False


def silence_fastjet_banner(fastjet: Any) -> None:
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


@dataclass
class ClusterInputs:
    """Candidates + ghosts, event-ordered, as FastJet inputs (ghosts scaled to ~0)."""

    n: int
    cat: np.ndarray
    cand: np.ndarray  # candidate row of each input, -1 for ghosts
    off: np.ndarray
    e: np.ndarray
    vectors: ak.Array


def cluster_inputs(
    p: Particles, cands: Candidates, ghosts: np.ndarray, ghost_cat: np.ndarray
) -> ClusterInputs:
    """The clustering inputs: every candidate and every ghost hadron, event by event."""
    in_part = np.concatenate([cands.index, ghosts])
    in_evt = p.evt[in_part]
    order = np.argsort(in_evt, kind="stable")
    in_part, in_evt = in_part[order], in_evt[order]
    in_cat = np.concatenate([cands.cat, ghost_cat])[order]
    in_cand = np.concatenate([np.arange(len(cands.index)), np.full(len(ghosts), -1)])[order]
    scale = np.where(in_cat >= CAT_GHOST_B, GHOST_SCALE, 1.0)
    in_counts = np.bincount(in_evt, minlength=p.n)
    in_e = p.en[in_part] * scale
    vectors = ak.unflatten(
        ak.zip(
            {
                "px": p.px[in_part] * scale,
                "py": p.py[in_part] * scale,
                "pz": p.pz[in_part] * scale,
                "E": in_e,
            }
        ),
        in_counts,
    )
    return ClusterInputs(p.n, in_cat, in_cand, event_offsets(in_counts), in_e, vectors)


def cluster(fastjet: Any, inputs: ClusterInputs, radius: float, ptmin: float) -> dict[str, Any]:
    """Anti-kT jets of ``radius`` above ``ptmin``: kinematics, ghost counts, energy
    fractions per category, and each constituent's input row (``con``) and jet (``owner``)."""
    n = inputs.n
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    seq = fastjet.ClusterSequence(inputs.vectors, jetdef)
    jets = seq.inclusive_jets(ptmin)
    cidx = seq.constituent_index(ptmin)
    nj = ak.to_numpy(ak.num(jets)).astype(np.int64)
    fj = ak.flatten(jets)
    jpx, jpy, jpz, je = (ak.to_numpy(fj[c]).astype(np.float64) for c in ("px", "py", "pz", "E"))
    jevt = np.repeat(np.arange(n), nj)
    ncon = ak.to_numpy(ak.flatten(ak.num(cidx, axis=2))).astype(np.int64)
    con = ak.to_numpy(ak.flatten(cidx, axis=None)).astype(np.int64)
    owner = np.repeat(np.arange(len(jevt)), ncon)
    con = con + inputs.off[jevt[owner]]
    ccat = inputs.cat[con]
    nall = len(jevt)

    def frac(k: int) -> np.ndarray:
        return np.bincount(owner, weights=np.where(ccat == k, inputs.e[con], 0.0), minlength=nall)

    jpt = np.hypot(jpx, jpy)
    return {
        "evt": jevt,
        "px": jpx,
        "py": jpy,
        "pz": jpz,
        "e": je,
        "pt": jpt,
        "eta": pseudorapidity(jpt, jpz),
        "phi": np.arctan2(jpy, jpx),
        "mass": np.sqrt(np.maximum(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0)),
        "nb": np.bincount(owner, weights=ccat == CAT_GHOST_B, minlength=nall).astype(np.int64),
        "nc": np.bincount(owner, weights=ccat == CAT_GHOST_C, minlength=nall).astype(np.int64),
        "ncon": np.bincount(owner, weights=ccat < CAT_GHOST_B, minlength=nall).astype(np.int64),
        "e_nh": frac(CAT_NEUTRAL) + frac(CAT_HF),
        "e_pho": frac(CAT_PHOTON),
        "e_mu": frac(CAT_MUON),
        "e_ele": frac(CAT_ELECTRON),
        "con": con,
        "owner": owner,
    }


@dataclass
class Ak4Jets:
    """The smeared AK4 jets: response, ID, b tag, the kept ones and the candidates' jets."""

    raw: dict[str, Any]
    raw_rank: np.ndarray  # GenJet index of each raw jet
    flavour: np.ndarray
    scale: np.ndarray
    pt: np.ndarray
    jet_id: np.ndarray
    btag: np.ndarray
    kept: np.ndarray  # raw jets kept as Jet, in output order
    out_index: np.ndarray  # Jet index (in its event) of each raw jet, -1 if dropped
    global_index: np.ndarray  # row among all kept jets, -1 if dropped
    of_candidate: np.ndarray  # raw jet of each candidate, -1 if none


def gen_jets(ak4: dict[str, Any], n: int) -> tuple[ak.Array, np.ndarray, np.ndarray]:
    """``GenJet`` (the unsmeared AK4 jets, pT-ordered), each raw jet's GenJet index and
    its hadron flavour (5 b, 4 c, 0 light, from the ghosts)."""
    raw_order = sort_within_events(ak4["evt"], ak4["pt"])
    raw_rank = np.empty(len(raw_order), dtype=np.int64)
    raw_rank[raw_order] = local_index(ak4["evt"][raw_order], n)
    flavour = np.where(ak4["nb"] > 0, 5, np.where(ak4["nc"] > 0, 4, 0)).astype(np.int32)
    collection = jagged(
        ak4["evt"][raw_order],
        n,
        {
            "pt": ak4["pt"][raw_order].astype(np.float32),
            "eta": ak4["eta"][raw_order].astype(np.float32),
            "phi": ak4["phi"][raw_order].astype(np.float32),
            "mass": ak4["mass"][raw_order].astype(np.float32),
            "hadronFlavour": flavour[raw_order].astype(np.uint8),
        },
    )
    return collection, raw_rank, flavour


def smear_jets(
    rng: np.random.Generator,
    ak4: dict[str, Any],
    raw_rank: np.ndarray,
    flavour: np.ndarray,
    inputs: ClusterInputs,
    n_cands: int,
    cfg: DetectorConfig,
) -> Ak4Jets:
    """Jet response, jet ID, b tag (random draws in this order) and the jets kept."""
    n = inputs.n
    abseta = np.abs(ak4["eta"])
    scale = response(rng, jet_sigma(ak4["pt"], abseta))
    pt = ak4["pt"] * scale
    e_jet = np.maximum(ak4["e"], 1e-9)
    tight = (
        (ak4["e_nh"] / e_jet < cfg.jet_neutral_frac_max)
        & (ak4["e_pho"] / e_jet < cfg.jet_neutral_frac_max)
        & (ak4["ncon"] > cfg.jet_min_constituents)
    )
    lepveto = (ak4["e_mu"] / e_jet < cfg.jet_lepton_frac_max) & (
        ak4["e_ele"] / e_jet < cfg.jet_lepton_frac_max
    )
    jet_id = (2 * tight + 4 * (tight & lepveto)).astype(np.int32)
    btag = btag_scores(rng, flavour, abseta, cfg)
    kept = np.flatnonzero((pt > cfg.jet_pt_min) & (abseta < cfg.jet_eta_max))
    kept = kept[sort_within_events(ak4["evt"][kept], pt[kept])]
    out_index = np.full(len(pt), -1, dtype=np.int64)
    out_index[kept] = local_index(ak4["evt"][kept], n)
    global_index = np.full(len(pt), -1, dtype=np.int64)
    global_index[kept] = np.arange(len(kept))
    of_candidate = np.full(n_cands, -1, dtype=np.int64)
    real = inputs.cand[ak4["con"]] >= 0
    of_candidate[inputs.cand[ak4["con"]][real]] = ak4["owner"][real]
    return Ak4Jets(
        ak4, raw_rank, flavour, scale, pt, jet_id, btag, kept, out_index, global_index,
        of_candidate,
    )  # fmt: skip


def jet_of(p_idx: np.ndarray, cands: Candidates, jets: Ak4Jets, index: np.ndarray) -> np.ndarray:
    """``index`` (a per-raw-jet array) of the jet holding each particle's candidate, else -1."""
    c = cands.of_particle[p_idx]
    j = np.where(c >= 0, jets.of_candidate[np.maximum(c, 0)], -1)
    return np.where(j >= 0, index[np.maximum(j, 0)], -1)


def fat_jets(
    rng: np.random.Generator, ak8: dict[str, Any], n: int, cfg: DetectorConfig
) -> dict[str, ak.Array]:
    """``GenJetAK8`` (unsmeared) and ``FatJet`` (smeared; draws the jet response)."""
    fraw = sort_within_events(ak8["evt"], ak8["pt"])
    f_rank = np.empty(len(fraw), dtype=np.int64)
    f_rank[fraw] = local_index(ak8["evt"][fraw], n)
    gen = jagged(
        ak8["evt"][fraw],
        n,
        {
            "pt": ak8["pt"][fraw].astype(np.float32),
            "eta": ak8["eta"][fraw].astype(np.float32),
            "phi": ak8["phi"][fraw].astype(np.float32),
            "mass": ak8["mass"][fraw].astype(np.float32),
        },
    )
    abseta = np.abs(ak8["eta"])
    scale = response(rng, jet_sigma(ak8["pt"], abseta))
    pt = ak8["pt"] * scale
    kf = np.flatnonzero((pt > cfg.fatjet_pt_min) & (abseta < cfg.jet_eta_max))
    kf = kf[sort_within_events(ak8["evt"][kf], pt[kf])]
    n_f = len(kf)
    fat = jagged(
        ak8["evt"][kf],
        n,
        {
            "pt": pt[kf].astype(np.float32),
            "eta": ak8["eta"][kf].astype(np.float32),
            "phi": ak8["phi"][kf].astype(np.float32),
            "mass": (ak8["mass"][kf] * scale[kf]).astype(np.float32),
            "nBHadrons": np.minimum(ak8["nb"][kf], 255).astype(np.uint8),
            "nCHadrons": np.minimum(ak8["nc"][kf], 255).astype(np.uint8),
            "genJetAK8Idx": f_rank[kf].astype(np.int32),
            "subJetIdx1": np.full(n_f, -1, np.int32),
            "subJetIdx2": np.full(n_f, -1, np.int32),
        },
    )
    return {"GenJetAK8": gen, "FatJet": fat}
