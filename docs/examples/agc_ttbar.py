"""The IRIS-HEP Analysis Grand Challenge tt̄ analysis, with a jetfm score column.

The event selection, regions, observables and jet variations follow the AGC's CMS Open
Data tt̄ analysis (``analyses/cms-open-data-ttbar`` of
https://github.com/iris-hep/analysis-grand-challenge, MIT licence, Copyright (c) 2022
IRIS-HEP), written here anew for coffea 2026 and the shipped NanoAOD files:

- exactly one lepton: electron (pT > 30 GeV, |eta| < 2.1, cutBased == 4, sip3d < 4) or
  muon (pT > 30 GeV, |eta| < 2.1, tightId, sip3d < 4, pfRelIso04_all < 0.15);
- at least four jets with pT > 30 GeV, |eta| < 2.4 and the tight-lepton-veto jet ID;
- ``4j1b``: exactly one b-tagged jet (btagCSVV2 > 0.5), observable H_T (sum of jet pT);
- ``4j2b``: at least two, observable the mass of the trijet with the highest pT among
  those holding a b-tagged jet;
- jet variations: ``pt_scale_up`` (every jet pT x 1.03) and ``pt_res_up`` (a per-jet
  Gaussian factor of width 5%, one per jet: a jagged array aligned with ``events.Jet``).

The addition: with a :class:`~jetfm_coffea.score.JetFMScorer`, the histogram ``score``
(axes ``variation``, ``score``) holds the model's ``score_<signal>`` of the ``4j2b``
events under each variation -- the variation's own selected events (``region_only``,
the default: only those are tokenised and scored), with the same per-jet factors as the
analysis, varying pT only (``vary="pt"``), as the analysis varies its jets. The AGC
histograms do not depend on whether the column is there.

Run it::

    from coffea import processor
    from jetfm_coffea.score import JetFMScorer
    proc = TtbarScoreAnalysis(JetFMScorer("runs/ttbar-vs-wjets"), signal="ttbar")
    out = processor.Runner(processor.IterativeExecutor(), schema=...)(fileset, proc)
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from jetfm_coffea.score import JetFMScorer, Variation

__all__ = ["B_TAG", "VARIATIONS", "TtbarScoreAnalysis", "jet_pt_resolution"]

B_TAG = 0.5
#: The analysis's jet variations besides the nominal.
VARIATIONS = ("pt_scale_up", "pt_res_up")


def jet_pt_resolution(pt: ak.Array, seed: int) -> ak.Array:
    """One Gaussian factor (mean 1, width 5%) per jet, aligned with ``pt`` (seeded)."""
    rng = np.random.default_rng(seed)
    counts = ak.num(pt, axis=1)
    return ak.unflatten(rng.normal(1.0, 0.05, int(ak.sum(counts))), counts)


def _selection(events: ak.Array, jets: ak.Array) -> dict[str, Any]:
    """The AGC regions of one jet variation: masks, the selected jets."""
    el, mu = events.Electron, events.Muon
    el = el[(el.pt > 30) & (abs(el.eta) < 2.1) & (el.cutBased == 4) & (el.sip3d < 4)]
    good_mu = (mu.pt > 30) & (abs(mu.eta) < 2.1) & mu.tightId & (mu.sip3d < 4)
    mu = mu[good_mu & (mu.pfRelIso04_all < 0.15)]
    jets = jets[(jets.pt > 30) & (abs(jets.eta) < 2.4) & ((jets.jetId & 4) != 0)]
    one_lepton = (ak.num(el) + ak.num(mu)) == 1
    four_jets = ak.num(jets) >= 4
    n_b = ak.sum(jets.btagCSVV2 > B_TAG, axis=1)
    return {
        "jets": jets,
        "4j1b": ak.to_numpy(one_lepton & four_jets & (n_b == 1)),
        "4j2b": ak.to_numpy(one_lepton & four_jets & (n_b >= 2)),
    }


def _trijet_mass(jets: ak.Array) -> np.ndarray:
    """Mass of the highest-pT trijet holding a b-tagged jet (one per event)."""
    trijet = ak.combinations(jets, 3, fields=["j1", "j2", "j3"])
    p4 = trijet.j1 + trijet.j2 + trijet.j3
    btag = np.maximum(trijet.j1.btagCSVV2, np.maximum(trijet.j2.btagCSVV2, trijet.j3.btagCSVV2))
    p4 = p4[btag > B_TAG]
    best = p4[ak.argmax(p4.pt, axis=1, keepdims=True)]
    return ak.to_numpy(ak.flatten(best.mass))


class TtbarScoreAnalysis(processor.ProcessorABC):
    """The AGC tt̄ regions and observables per jet variation, plus the score column.

    ``scorer``: None for the analysis alone; ``signal``: the class whose score is
    histogrammed (default: the scorer's last); ``region_only``: score only the
    ``4j2b`` events of each variation (False: every event, then select).
    """

    def __init__(
        self, scorer: JetFMScorer | None = None, signal: str | None = None, region_only=True
    ):
        self.scorer = scorer
        self.signal = signal or (scorer.class_names[-1] if scorer is not None else None)
        self.region_only = region_only

    def _hists(self) -> dict[str, hist.Hist]:
        var = hist.axis.StrCategory(["nominal", *VARIATIONS], name="variation")
        out = {
            "4j1b": hist.Hist(var, hist.axis.Regular(25, 50, 550, name="observable")),
            "4j2b": hist.Hist(var, hist.axis.Regular(25, 50, 550, name="observable")),
        }
        if self.scorer is not None:
            out["score"] = hist.Hist(var, hist.axis.Regular(20, 0, 1, name="score"))
        return out

    def process(self, events: ak.Array) -> dict[str, Any]:
        out = self._hists()
        seed = int(events.metadata.get("entrystart", 0))
        factors = {
            "pt_scale_up": ak.ones_like(events.Jet.pt) * 1.03,
            "pt_res_up": jet_pt_resolution(events.Jet.pt, seed),
        }
        regions = {}
        for name in ("nominal", *VARIATIONS):
            jets = events.Jet
            if name in factors:
                jets = ak.with_field(jets, jets.pt * factors[name], "pt")
            sel = _selection(events, jets)
            regions[name] = sel["4j2b"]
            out["4j1b"].fill(name, ak.to_numpy(ak.sum(sel["jets"].pt[sel["4j1b"]], axis=1)))
            out["4j2b"].fill(name, _trijet_mass(sel["jets"][sel["4j2b"]]))
        if self.scorer is not None:
            variations = {k: Variation.factor({"Jet": f}, vary="pt") for k, f in factors.items()}
            scores = self.scorer(
                events, variations=variations, mask=regions if self.region_only else None
            )
            field = f"score_{self.signal}"
            for name, sel in regions.items():
                column = scores if name == "nominal" else scores.variations[name]
                out["score"].fill(name, ak.to_numpy(column[field])[sel])
        out["regions"] = {name: int(sel.sum()) for name, sel in regions.items()}
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator
