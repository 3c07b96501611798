"""Regression targets from the generator's truth record, written as ``GenTarget_*`` branches.

Every generated file carries one float32 branch per target (one value per event), read
from the Pythia event record before the detector simulation; the value is NaN where the
target is not defined in that event (a downstream regression task drops those events
and reports how many):

======================== ===========================================================
branch                   definition (GeV)
======================== ===========================================================
``GenTarget_hadTopPt``   pT of the top quark (last copy) whose W decays to quarks, in
                         events with exactly one such top (tt̄ and tt̄H lepton+jets);
                         NaN in dilepton and all-hadronic events and without tops
``GenTarget_nuPt``       pT of the vector sum of the neutrinos from W decays (the
                         W's own neutrino, last copy; not those of τ or hadron
                         decays): the true MET of W+jets and leptonic tt̄; NaN when no
                         W decays leptonically
``GenTarget_higgsPt``    pT of the Higgs boson (last copy; the first one if several):
                         VH and tt̄H; NaN without a Higgs boson
======================== ===========================================================

Record conventions (Pythia 8): indices are per event, 0 is the event itself; a
particle's daughters are ``daughter1..daughter2`` when ``0 < daughter1 <= daughter2``,
else ``daughter1`` and (if > 0) ``daughter2``; a *copy* (recoil, shower) has the same
``id`` as its mother, the *last copy* has no daughter with its own ``id``.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

__all__ = ["TARGET_BRANCHES", "TARGET_PREFIX", "TruthRecord", "truth_targets"]

#: Prefix of the target branches (``GenTarget_<name>``, NanoAOD naming).
TARGET_PREFIX = "GenTarget_"
#: Every target branch ``jetfm generate`` writes, with its one-line definition.
TARGET_BRANCHES: dict[str, str] = {
    "GenTarget_hadTopPt": "pT of the hadronically decaying top quark (lepton+jets tt̄)",
    "GenTarget_nuPt": "pT of the vector sum of the neutrinos from W decays (true MET)",
    "GenTarget_higgsPt": "pT of the Higgs boson",
}

_NEUTRINOS = (12, 14, 16)


class TruthRecord:
    """The flat (all events concatenated) Pythia record of one ``nextBatch`` result."""

    def __init__(self, prt: ak.Array):
        counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
        self.n_events = len(counts)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.event = np.repeat(np.arange(self.n_events), counts)
        flat = ak.flatten(prt)
        self.pid = ak.to_numpy(flat["id"]).astype(np.int64)
        base = offsets[self.event]
        d1 = ak.to_numpy(flat["daughter1"]).astype(np.int64)
        d2 = ak.to_numpy(flat["daughter2"]).astype(np.int64)
        self.d1 = np.where(d1 > 0, base + d1, -1)
        self.d2 = np.where(d2 > 0, base + d2, -1)
        mom = flat["p"]
        self.p4 = np.stack(
            [ak.to_numpy(mom[c]).astype(np.float64) for c in ("px", "py", "pz", "e")], axis=1
        )

    def daughters(self, i: int) -> list[int]:
        """Global indices of the daughters of particle ``i``."""
        a, b = int(self.d1[i]), int(self.d2[i])
        if a < 0:
            return []
        if b >= a:
            return list(range(a, b + 1))
        return [a] if b < 0 else [a, b]

    def is_last_copy(self) -> np.ndarray:
        """Per particle: no daughter carries its ``id``."""
        n = len(self.pid)
        same1 = (self.d1 >= 0) & (self.pid[np.clip(self.d1, 0, n - 1)] == self.pid)
        same2 = (self.d2 >= 0) & (self.pid[np.clip(self.d2, 0, n - 1)] == self.pid)
        return ~(same1 | same2)

    def last_copy_of(self, i: int) -> int:
        """Follow the copies of particle ``i`` down to its last one."""
        while True:
            same = [d for d in self.daughters(i) if self.pid[d] == self.pid[i]]
            if not same:
                return i
            i = same[0]

    def pt(self, i: int | np.ndarray) -> np.ndarray:
        return np.hypot(self.p4[i, 0], self.p4[i, 1])

    def w_decay(self, w: int) -> tuple[str, list[int]]:
        """``("hadronic" | "leptonic" | "other", daughters)`` of the last copy of W ``w``."""
        kids = self.daughters(self.last_copy_of(w))
        aid = np.abs(self.pid[kids]) if kids else np.zeros(0, np.int64)
        if (aid <= 5).any():
            return "hadronic", kids
        if np.isin(aid, _NEUTRINOS).any():
            return "leptonic", kids
        return "other", kids


def _had_top_pt(rec: TruthRecord, last: np.ndarray) -> np.ndarray:
    out = np.full(rec.n_events, np.nan)
    found: dict[int, list[float]] = {}
    for t in np.flatnonzero(last & (np.abs(rec.pid) == 6)):
        ws = [d for d in rec.daughters(t) if abs(rec.pid[d]) == 24]
        if ws and rec.w_decay(ws[0])[0] == "hadronic":
            found.setdefault(int(rec.event[t]), []).append(float(rec.pt(t)))
    for ev, pts in found.items():
        if len(pts) == 1:
            out[ev] = pts[0]
    return out


def _nu_pt(rec: TruthRecord, last: np.ndarray) -> np.ndarray:
    px, py = np.zeros(rec.n_events), np.zeros(rec.n_events)
    seen = np.zeros(rec.n_events, bool)
    for w in np.flatnonzero(last & (np.abs(rec.pid) == 24)):
        kind, kids = rec.w_decay(w)
        if kind != "leptonic":
            continue
        ev = rec.event[w]
        for d in kids:
            if abs(rec.pid[d]) in _NEUTRINOS:
                nu = rec.last_copy_of(d)
                px[ev] += rec.p4[nu, 0]
                py[ev] += rec.p4[nu, 1]
                seen[ev] = True
    return np.where(seen, np.hypot(px, py), np.nan)


def _higgs_pt(rec: TruthRecord, last: np.ndarray) -> np.ndarray:
    out = np.full(rec.n_events, np.nan)
    for h in np.flatnonzero(last & (rec.pid == 25))[::-1]:  # reversed: the first one wins
        out[rec.event[h]] = rec.pt(h)
    return out


def truth_targets(prt: Any) -> dict[str, np.ndarray]:
    """The :data:`TARGET_BRANCHES` (float32, NaN where undefined) of a ``nextBatch`` record."""
    rec = TruthRecord(prt)
    if rec.n_events == 0:
        return {name: np.zeros(0, np.float32) for name in TARGET_BRANCHES}
    last = rec.is_last_copy()
    values = {
        "GenTarget_hadTopPt": _had_top_pt(rec, last),
        "GenTarget_nuPt": _nu_pt(rec, last),
        "GenTarget_higgsPt": _higgs_pt(rec, last),
    }
    return {name: values[name].astype(np.float32) for name in TARGET_BRANCHES}
