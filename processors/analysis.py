"""ScoreAnalysisProcessor: an example analysis that cuts on a jetfm classifier score.

Per dataset it fills a score distribution and two physics observables (leading-jet
pT, dimuon mass) before and after ``score_<signal> > cut``, counts events, events that
pass, events without tokens and events with non-finite scores, and optionally returns
the per-event scores with their ids. It runs in virtual mode (``processor.Runner``
with any executor) and in dask mode (``apply_to_fileset``) with the same numbers.

The scores are kept as their own array and never assigned into ``events``: every
observable is taken from the original ``events``, so in dask mode the graph of an
observable does not contain the model (see :mod:`jetfm_coffea.score.scorer`).
Without a model the processor fills the observables only (the speed baseline).

Systematic variations: with ``variations=`` (passed to the scorer, e.g.
``standard_variations(["JES", "JER"])``) it also fills ``score_variations``, the score
distribution per variation (a ``variation`` category axis: ``nominal``, ``JES_up``, ...)
from ``scores.variations[name].score_<signal>``.

A regression model (``jetfm finetune`` of a ``type: regression`` task) is filled the
same way with its columns: ``score`` histograms the predicted value ``pred_<target>``
(GeV), ``sigma`` its predicted width ``sigma_<target>``, the cut is
``pred_<target> > cut`` and ``return_scores`` returns both columns.

Collision data are first restricted to their certified luminosity sections
(:func:`jetfm_coffea.selection.lumi.certify`): the cutflow's ``events`` counts the events
read, ``certified_lumi`` those kept, and everything else is filled from the kept ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from jetfm_coffea.model import ScoredOutputs
from jetfm_coffea.score import JetFMScorer, count_nonfinite
from jetfm_coffea.selection.lumi import CERTIFIED_LUMI, certify, warn_if_all_removed
from jetfm_coffea.tokens.fields import ID_FIELDS

__all__ = ["ScoreAnalysisProcessor", "finalize_analysis"]

STAGES = ("all", "pass")


def _is_dask(events: Any) -> bool:
    return type(events).__module__.startswith("dask_awkward")


class ScoreAnalysisProcessor(processor.ProcessorABC):
    """Add jetfm scores, cut on the signal score, histogram before/after the cut.

    Parameters
    ----------
    model
        Scoring model directory (or k-fold list); ``None``: no scores (baseline).
    cut
        Events with ``score_<signal> > cut`` pass.
    signal
        Class whose score is cut on (default: the last class).
    return_scores
        Also return per-event ``run, luminosityBlock, event, score_*``.
    scorer_options
        Passed to :class:`~jetfm_coffea.score.JetFMScorer` (batch_size, device, ...).
    """

    def __init__(
        self,
        model: str | Path | list[str | Path] | None = None,
        cut: float = 0.5,
        signal: str | None = None,
        return_scores: bool = False,
        **scorer_options: Any,
    ):
        self.scorer = JetFMScorer(model, **scorer_options) if model is not None else None
        self.cut = float(cut)
        self.return_scores = return_scores
        self.signal = None
        self.columns: tuple[str, ...] = ()
        self.scored: ScoredOutputs | None = None  # how the model's scored head is read
        if self.scorer is not None:
            info = self.scorer.infos[0]
            self.columns = info.columns  # score_<class>..., or pred_<target>, sigma_<target>
            self.scored = info.scored
            names = self.scorer.class_names
            if self.scored is not None and self.scored.per_class:
                self.signal = signal or names[-1]
                if self.signal not in names:
                    raise ValueError(f"signal class {self.signal!r} not among {list(names)}")

    @property
    def score_field(self) -> str | None:
        """The column cut on: the signal class's (``score_<signal>`` of a classifier), or
        the first of a head without per-class columns (a regression's ``pred_<target>``)."""
        if self.scored is None:
            return None
        if self.scored.per_class:
            return self.columns[list(self.scorer.class_names).index(self.signal)]
        return self.columns[0]

    @property
    def width_field(self) -> str | None:
        """The predicted-width column histogrammed beside the score (a regression's)."""
        if self.scored is None or self.scored.width_column is None:
            return None
        return self.columns[self.scored.width_column]

    def _score_axis(self) -> Any:
        bins, low, high, unit = self.scored.axis
        label = f"{self.score_field} [{unit}]" if unit else f"{self.score_field}"
        return hist.axis.Regular(bins, low, high, name="score", label=label)

    def _hists(self, dask: bool) -> dict[str, Any]:
        if dask:
            from hist.dask import Hist
        else:
            Hist = hist.Hist
        stage = hist.axis.StrCategory(list(STAGES), name="stage", label="selection")
        out = {
            "jet_pt": Hist(
                stage,
                hist.axis.Regular(50, 0, 250, name="pt", label="leading-jet $p_T$ [GeV]"),
                storage=hist.storage.Weight(),
            ),
            "dimuon_mass": Hist(
                stage,
                hist.axis.Regular(60, 0, 120, name="mass", label="dimuon mass [GeV]"),
                storage=hist.storage.Weight(),
            ),
        }
        if self.scorer is not None:
            out["score"] = Hist(self._score_axis(), storage=hist.storage.Weight())
        if self.width_field is not None:
            unit = self.scored.axis[3]
            out["sigma"] = Hist(
                hist.axis.Regular(
                    50, 0, self.scored.axis[2] / 2, name="sigma",
                    label=f"{self.width_field} [{unit}]" if unit else self.width_field,
                ),
                storage=hist.storage.Weight(),
            )  # fmt: skip
        if self.scorer is not None and self.scorer.variations:
            names = ["nominal", *self.scorer.variations]
            out["score_variations"] = Hist(
                hist.axis.StrCategory(names, name="variation", label="systematic variation"),
                self._score_axis(),
                storage=hist.storage.Weight(),
            )
        return out

    def empty_output(self) -> dict:
        return {}

    def process(self, events: Any) -> dict:
        dataset = events.metadata.get("dataset", "dataset") if events.metadata else "dataset"
        dask = _is_dask(events)
        if dask:
            import dask_awkward as lib
        else:
            lib = ak
        events, lumi_lines = certify(events)  # collision data: certified sections only
        hists = self._hists(dask)
        n_events = lib.num(events.event, axis=0)
        cutflow: dict[str, Any] = {"events": n_events, **lumi_lines}

        # observables from the original events (never from an events with scores in it)
        jet_pt = events.Jet.pt
        has_jet = lib.num(jet_pt, axis=1) > 0
        muons = events.Muon
        two_mu = lib.num(muons.pt, axis=1) >= 2

        passed = None
        if self.scorer is not None:
            scores = self.scorer(events)  # their own array, aligned with events
            score = scores[self.score_field]
            finite = np.isfinite(score)
            passed = finite & (score > self.cut)
            hists["score"].fill(score=score[finite])
            if self.width_field is not None:  # the predicted width of the same events
                hists["sigma"].fill(sigma=scores[self.width_field][finite])
            cutflow["pass"] = lib.sum(passed, axis=0)
            cutflow["nonfinite_scores"] = count_nonfinite(scores)
            cutflow["events_without_tokens"] = lib.sum(scores.n_tokens == 0, axis=0)
            if "score_variations" in hists:  # the score under each systematic variation
                hists["score_variations"].fill(variation="nominal", score=score[finite])
                for name in self.scorer.variations:
                    varied = scores["variations"][name][self.score_field]
                    hists["score_variations"].fill(
                        variation=name, score=varied[np.isfinite(varied)]
                    )

        for stage in STAGES:
            if stage == "pass" and passed is None:
                continue
            jsel = has_jet if passed is None or stage == "all" else has_jet & passed
            msel = two_mu if passed is None or stage == "all" else two_mu & passed
            hists["jet_pt"].fill(stage=stage, pt=lib.fill_none(lib.max(jet_pt[jsel], axis=1), 0.0))
            mu = muons[msel]
            pair = mu[:, 0] + mu[:, 1]
            hists["dimuon_mass"].fill(stage=stage, mass=pair.mass)

        out: dict[str, Any] = {"cutflow": cutflow, **hists}
        if self.return_scores and self.scorer is not None:
            columns = {name: events[name] for name in ID_FIELDS}
            columns.update({f: scores[f] for f in self.columns})
            record = lib.zip(columns, depth_limit=1)
            # plain arrays: NanoEvents behaviours do not pickle between processes
            if dask:
                out["scores"] = lib.map_partitions(_plain, record, label="jetfm-plain-scores")
            else:
                out["scores"] = [_plain(record)]
        return {dataset: out}

    def postprocess(self, accumulator: dict) -> dict:
        return finalize_analysis(accumulator, self)


def _plain(array: ak.Array) -> ak.Array:
    """The same data without behaviours or attrs."""
    return ak.Array(array.layout)


def finalize_analysis(output: dict, proc: ScoreAnalysisProcessor) -> dict:
    """Plain-int cutflows, one sorted score array per dataset, the model's identity.

    Virtual mode calls it as ``postprocess``; call it on the computed dask-mode output
    to get identical objects.
    """
    for dataset, result in output.items():
        result["cutflow"] = {k: int(v) for k, v in result["cutflow"].items()}
        if CERTIFIED_LUMI in result["cutflow"]:
            flow = result["cutflow"]
            warn_if_all_removed(dataset, flow["events"], flow[CERTIFIED_LUMI])
        scores = result.get("scores")
        if isinstance(scores, list):
            scores = ak.concatenate(scores) if scores else None
        if scores is not None:
            order = np.lexsort([ak.to_numpy(scores[name]) for name in reversed(ID_FIELDS)])
            result["scores"] = scores[order]
        if proc.scorer is not None:
            params = proc.scorer.parameters()
            result["model"] = {
                "hash": params["jetfm_model_hash"],
                "version": params["jetfm_model_version"],
                "weights_check": params["jetfm_weights_check"],
                "signal": proc.signal,
                "cut_on": proc.score_field,  # score_<signal>, or pred_<target>
                "cut": proc.cut,
                "class_names": list(proc.scorer.class_names),
            }
    return output
