"""The numbers of the parametric detector: :class:`DetectorConfig` (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BTAG_WP_MEDIUM", "DetectorConfig"]

BTAG_WP_MEDIUM = 0.2770
"""Medium working point of ``Jet_btagDeepFlavB`` (DeepJet, 2018 value)."""


@dataclass(frozen=True)
class DetectorConfig:
    """The numbers of the parametric detector (see the module docstring).

    Acceptances, thresholds, efficiencies and identification rates; the resolutions are
    the functions ``ecal_sigma``, ``muon_sigma``, ``jet_sigma`` and ``candidate_sigma``.
    """

    # jets
    jet_r: float = 0.4
    fatjet_r: float = 0.8
    jet_pt_min: float = 20.0
    jet_raw_pt_min: float = 15.0
    jet_eta_max: float = 4.7
    fatjet_pt_min: float = 170.0
    fatjet_raw_pt_min: float = 100.0
    #: jet ID: "tight" below these neutral-hadron and photon energy fractions and with more
    #: than ``jet_min_constituents`` constituents; the lepton veto below ``jet_lepton_frac_max``
    jet_neutral_frac_max: float = 0.9
    jet_lepton_frac_max: float = 0.8
    jet_min_constituents: int = 1
    # reconstructed leptons and photons
    muon_pt_min: float = 3.0
    muon_eta_max: float = 2.4
    electron_pt_min: float = 5.0
    electron_eta_max: float = 2.5
    photon_pt_min: float = 10.0
    photon_eta_max: float = 2.5
    # sub-detector acceptance
    tracker_eta_max: float = 2.5
    calo_eta_max: float = 3.0
    hf_eta_max: float = 5.0
    ecal_barrel_eta_max: float = 1.479
    # particle-flow candidate thresholds (pT for tracks and muons, energy for calorimeters)
    cand_track_pt_min: float = 0.3
    cand_muon_pt_min: float = 0.5
    cand_photon_e_min: float = 0.5
    cand_neutral_e_min: float = 1.0
    cand_hf_e_min: float = 3.0
    # b tagging
    btag_eff_b: float = 0.70
    btag_eff_c: float = 0.10
    btag_eff_light: float = 0.01
    # efficiencies: muons (above / below muon_eff_pt), electrons (barrel / endcap, and
    # below electron_eff_pt), photons
    muon_eff_pt: float = 10.0
    muon_eff_high: float = 0.98
    muon_eff_low: float = 0.90
    electron_eff_pt: float = 10.0
    electron_eff_low: float = 0.80
    electron_eff_barrel: float = 0.95
    electron_eff_endcap: float = 0.90
    photon_eff: float = 0.95
    muon_tight_eff: float = 0.96
    # isolation cones (muons: pfRelIso04_all, electrons and photons: pfRelIso03_all)
    muon_iso_r: float = 0.4
    egamma_iso_r: float = 0.3
    #: identification grades fail, veto, loose, medium, tight: probabilities, and the
    #: relative-isolation upper bounds of tight, medium, loose, veto (electrons)
    electron_id_probs: tuple[float, ...] = (0.03, 0.03, 0.04, 0.05, 0.85)
    electron_iso_bounds: tuple[float, ...] = (0.0588, 0.0695, 0.112, 0.198)
    #: photons: fail, loose, medium, tight; isolation bounds of tight, medium, loose
    photon_id_probs: tuple[float, ...] = (0.05, 0.05, 0.10, 0.80)
    photon_iso_bounds: tuple[float, ...] = (0.07, 0.10, 0.15)
    # GenPart: final leptons and neutrinos, and photons, above these pT
    gen_lepton_pt_min: float = 3.0
    gen_photon_pt_min: float = 10.0
    pfcands: bool = False
