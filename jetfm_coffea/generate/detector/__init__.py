r"""A parametric, CMS-like detector: Pythia 8 particles -> NanoAOD-like reconstructed objects.

Everything is vectorised over a batch of events (flat NumPy arrays plus per-event
counts); there are no per-particle Python loops.  FastJet clusters the jets.

Particle flow inputs ("candidates")
===================================
Visible final-state particles (neutrinos and invisible BSM particles removed) become
candidates when they are inside the detector and above its thresholds:

================= ====================== ====================================== ==========
candidate         particles              acceptance, threshold                  PF pdgId
================= ====================== ====================================== ==========
charged hadron    charged, not e/μ       \|η\| < 2.5, pT > 0.3 GeV              ±211
electron          e±                     \|η\| < 2.5, pT > 0.3 GeV              ±11
muon              μ±                     \|η\| < 2.4, pT > 0.5 GeV              ±13
photon            γ, and e± outside      \|η\| < 3.0, E > 0.5 GeV               22
                  the tracker
neutral hadron    neutral hadrons, and   \|η\| < 3.0, E > 1.0 GeV               130
                  charged outside it
forward (HF)      any visible, 3<\|η\|<5 E > 3.0 GeV                            1
================= ====================== ====================================== ==========

Muons outside \|η\| < 2.4 and everything below threshold are lost (they end up in MET).
Candidates are smeared with the resolution of their sub-detector (``PFCands`` output
and the unclustered part of MET):

================= ===========================================================
tracker (h±, e±)  σ(pT)/pT = 0.5 % ⊕ 0.015 %·pT
muon system       σ(pT)/pT = a ⊕ 0.01 %·pT, a = 1 % (\|η\|<0.9), 1.5 % (<1.2), 2 %
ECAL (γ, e±)      σ(E)/E = 3 %/√E ⊕ 0.12/E ⊕ 0.3 % (\|η\|<1.479); 5 %/√E ⊕ 0.25/E ⊕ 0.5 %
HCAL              σ(E)/E = 100 %/√E ⊕ 5 %
HF                σ(E)/E = 150 %/√E ⊕ 10 %
================= ===========================================================

Reconstructed objects
=====================

============ ===================================================================================
Jet          anti-kT R = 0.4 (FastJet) of the *unsmeared* candidates, then smeared:
             σ(pT)/pT = N/pT ⊕ S/√pT ⊕ C with (N, S, C) = (3, 1.0, 0.05) for \|η\| < 1.3,
             (4, 1.2, 0.06) for \|η\| < 3.0 and (5, 1.5, 0.08) up to 4.7.  Kept: pT > 20 GeV,
             \|η\| < 4.7.  ``jetId`` = 6 (tight + lepton veto), 2 (tight, fails the lepton
             veto: muon or electron energy fraction ≥ 0.8) or 0 (neutral hadron or photon
             energy fraction ≥ 0.9).  ``GenJet`` holds the unsmeared jets (pT > 15 GeV).
b tagging    ``hadronFlavour`` by ghost-matching the last B (5) or else C (4) hadrons.  Tagging
             (\|η\| < 2.5) at the medium working point :data:`BTAG_WP_MEDIUM`:
             efficiency 70 % (b), 10 % (c), 1 % (light); ``btagDeepFlavB`` is drawn from
             per-flavour Beta distributions on either side of the working point, so
             ``btagDeepFlavB > BTAG_WP_MEDIUM`` is exactly the tag decision; -1 outside the
             tracker.
FatJet       anti-kT R = 0.8, same smearing, pT > 170 GeV, \|η\| < 4.7; ``nBHadrons`` and
             ``nCHadrons`` from the ghosts.  ``GenJetAK8``: unsmeared, pT > 100 GeV.
             Sub-jets are not simulated (``SubJet`` is empty, indices are -1).
Muon         true μ, \|η\| < 2.4, pT > 3 GeV; efficiency 98 % (pT > 10 GeV) or 90 %; muon-system
             resolution above; ``tightId`` with probability 96 %; ``looseId`` always.
Electron     true e, \|η\| < 2.5, pT > 5 GeV; efficiency 95 % (\|η\| < 1.479) or 90 %
             (80 % below 10 GeV); ECAL resolution; ``cutBased`` (0 fail … 4 tight) is the
             lower of an identification grade (tight 85 %, medium 5 %, loose 4 %, veto 3 %,
             fail 3 %) and an isolation grade (relIso < 0.0588 tight, < 0.0695 medium,
             < 0.112 loose, < 0.198 veto).
Photon       true γ, \|η\| < 2.5, pT > 10 GeV; efficiency 95 %; ECAL resolution; ``cutBased``
             (0 fail … 3 tight) the lower of an identification grade (tight 80 %, medium
             10 %, loose 5 %, fail 5 %) and an isolation grade (< 0.07, < 0.10, < 0.15).
Isolation    scalar pT sum of the other candidates within ΔR < 0.4 (muons,
             ``pfRelIso04_all``) or 0.3 (electrons, photons, ``pfRelIso03_all``) / pT.
MET          minus the vector sum of the smeared jets (raw pT > 15 GeV) and the smeared
             candidates outside them.  ``GenMET`` is the neutrino (invisible) sum.
GenPart      hard-process particles (\|status\| 21-29), the last copies of t, W, Z, H and τ,
             final e/μ/ν with pT > 3 GeV and photons with pT > 10 GeV; mothers re-pointed
             to the nearest kept ancestor.  ``statusFlags`` carries isPrompt (bit 0),
             isHardProcess (bit 7) and isLastCopy (bit 13), approximately.
============ ===================================================================================

The numbers are the fields of :class:`DetectorConfig` (``config.py``); :func:`simulate` runs
stage functions over one particle record (:class:`Particles`, ``particles.py``): the
particle-flow candidates and ghost hadrons, jet clustering and smearing (``jets.py``),
leptons, photons, GenPart and MET (``objects.py``), with the resolutions, isolation and
b tagging of ``physics.py`` and the array helpers of ``arrays.py``.

Collections that are not simulated but that coffea's ``NanoAODSchema`` cross-references
(``Tau``, ``LowPtElectron``, ``FsrPhoton``, ``GenVisTau``, ``SubJet``) are written empty,
so that the files read without warnings.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea._optional import import_optional
from jetfm_coffea.generate.detector.config import BTAG_WP_MEDIUM, DetectorConfig
from jetfm_coffea.generate.detector.jets import (
    cluster,
    cluster_inputs,
    fat_jets,
    gen_jets,
    silence_fastjet_banner,
    smear_jets,
)
from jetfm_coffea.generate.detector.objects import (
    electron_collection,
    empty_collections,
    gen_particles,
    jet_collection,
    missing_energy,
    muon_collection,
    photon_collection,
    reconstruct_leptons,
)
from jetfm_coffea.generate.detector.particles import (
    Particles,
    ghost_hadrons,
    particle_record,
    pf_candidates,
)

__all__ = ["BTAG_WP_MEDIUM", "DetectorConfig", "Particles", "particle_record", "simulate"]


def simulate(
    batch: ak.Array, rng: np.random.Generator, config: DetectorConfig | None = None
) -> dict[str, Any]:
    """Turn one ``Pythia.nextBatch`` result into NanoAOD-like branches.

    Returns a dict of flat NumPy arrays (one value per event, e.g. ``MET_pt``) and jagged
    awkward record arrays (collections, e.g. ``Jet``), ready for
    :class:`~jetfm_coffea.generate.nanoaod_writer.NanoAODWriter`; the event-id branches
    are added by the caller. The stages run in a fixed order, so the random draws (and
    the output, for a given ``rng`` state) are reproducible.
    """
    cfg = config or DetectorConfig()
    fastjet = import_optional("fastjet")
    silence_fastjet_banner(fastjet)
    p = particle_record(batch)
    cands = pf_candidates(p, cfg)
    inputs = cluster_inputs(p, cands, *ghost_hadrons(p))
    ak4 = cluster(fastjet, inputs, cfg.jet_r, cfg.jet_raw_pt_min)
    ak8 = cluster(fastjet, inputs, cfg.fatjet_r, cfg.fatjet_raw_pt_min)
    out: dict[str, Any] = {}
    out["GenJet"], raw_rank, flavour = gen_jets(ak4, p.n)
    jets = smear_jets(rng, ak4, raw_rank, flavour, inputs, len(cands.index), cfg)
    mu, el, ph = reconstruct_leptons(rng, p, cands, cfg)
    out["GenPart"], part2gen = gen_particles(p, cfg)
    out["Muon"] = muon_collection(rng, p, mu, cands, jets, part2gen, cfg)
    out["Electron"] = electron_collection(rng, p, el, cands, jets, part2gen, cfg)
    out["Photon"] = photon_collection(rng, p, ph, cands, jets, part2gen, cfg)
    out["Jet"] = jet_collection(p, jets, mu, el, cands)
    out.update(fat_jets(rng, ak8, p.n, cfg))
    out.update(missing_energy(rng, p, cands, jets, cfg))
    out.update(empty_collections(p.n))
    return out
