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
``GenTarget_bosonPt``    pT (last copy) of the first W, Z, H or photon of the hard
                         process (status 21-23) that does not come from a top decay:
                         W/Z/γ + jets, VH, VZ, dibosons, Higgs production; NaN in
                         events without one (tt̄, QCD)
``GenTarget_mbb``        mass of the b b̄ pair a Z or Higgs boson decays to (the
                         first such pair): H → bb̄, Z → bb̄; NaN without one
``GenTarget_nHardB``     number of b quarks of the hard process and its resonance
                         decays (status 21-23): 2 in tt̄, 4 in tt̄H(bb), ...
``GenTarget_ttHF``       in events with a top-quark pair, the flavour of the extra
                         quarks (a label, 0/1/2 as a float): 2 when a b quark of the
                         parton shower, multiple interactions or beam remnants
                         (status 31-69) with pT > 15 GeV and |η| < 2.5 has no top,
                         W, Z or Higgs ancestor (tt̄ + b), else 1 for such a c quark
                         (tt̄ + c), else 0 (tt̄ + light); NaN without two top quarks
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

__all__ = [
    "HF_ETA_MAX",
    "HF_PT_MIN",
    "TARGET_BRANCHES",
    "TARGET_PREFIX",
    "TruthRecord",
    "truth_targets",
]

#: Prefix of the target branches (``GenTarget_<name>``, NanoAOD naming).
TARGET_PREFIX = "GenTarget_"
#: Every target branch ``jetfm generate`` writes, with its one-line definition.
TARGET_BRANCHES: dict[str, str] = {
    "GenTarget_hadTopPt": "pT of the hadronically decaying top quark (lepton+jets tt̄)",
    "GenTarget_nuPt": "pT of the vector sum of the neutrinos from W decays (true MET)",
    "GenTarget_higgsPt": "pT of the Higgs boson",
    "GenTarget_bosonPt": "pT of the hard-process W, Z, H or photon not from a top decay",
    "GenTarget_mbb": "mass of the b bbar pair from a Z or Higgs decay",
    "GenTarget_nHardB": "number of hard-process b quarks (incl. resonance decays)",
    "GenTarget_ttHF": "tt events: extra b (2), extra c (1) or light (0) from the shower",
}

_NEUTRINOS = (12, 14, 16)
#: ``GenTarget_ttHF``: an extra quark counts when it could make a jet (GeV, |η|).
HF_PT_MIN, HF_ETA_MAX = 15.0, 2.5


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
        self.status = np.abs(ak.to_numpy(flat["status"]).astype(np.int64))
        m1 = ak.to_numpy(flat["mother1"]).astype(np.int64)
        self.m1 = np.where(m1 > 0, base + m1, -1)
        d1 = ak.to_numpy(flat["daughter1"]).astype(np.int64)
        d2 = ak.to_numpy(flat["daughter2"]).astype(np.int64)
        self.d1 = np.where(d1 > 0, base + d1, -1)
        self.d2 = np.where(d2 > 0, base + d2, -1)
        mom = flat["p"]
        self.p4 = np.stack(
            [ak.to_numpy(mom[c]).astype(np.float64) for c in ("px", "py", "pz", "e")], axis=1
        )

    def has_ancestor(self, ids: tuple[int, ...]) -> np.ndarray:
        """Per particle: an ancestor (along ``mother1``) has ``|id|`` in ``ids`` (pointer
        jumping: log2 of the record's depth passes over all particles)."""
        flag = np.isin(np.abs(self.pid), ids)
        m = self.m1.copy()
        hit = np.zeros(len(m), bool)
        valid = m >= 0
        hit[valid] = flag[m[valid]]
        while valid.any():
            mm = np.where(valid, m, 0)
            hit = hit | (valid & hit[mm])
            m = np.where(valid, m[mm], -1)
            valid = m >= 0
        return hit

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


def _first_per_event(rec: TruthRecord, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` of the first of the particles ``idx`` in each event (NaN elsewhere)."""
    out = np.full(rec.n_events, np.nan)
    ev = rec.event[idx]
    out[ev[::-1]] = values[::-1]  # reversed: the first one per event is written last
    return out


def _boson_pt(rec: TruthRecord, from_top: np.ndarray) -> np.ndarray:
    aid = np.abs(rec.pid)
    hard = (rec.status >= 21) & (rec.status <= 23) & np.isin(aid, (22, 23, 24, 25)) & ~from_top
    first = hard & ~(rec.m1 >= 0) | hard & (rec.pid[np.maximum(rec.m1, 0)] != rec.pid)
    idx = np.flatnonzero(first)
    last = np.array([rec.last_copy_of(int(i)) for i in idx], np.int64)
    return _first_per_event(rec, idx, rec.pt(last) if len(last) else np.zeros(0))


def _mbb(rec: TruthRecord) -> np.ndarray:
    b = np.flatnonzero((np.abs(rec.pid) == 5) & (rec.m1 >= 0))
    b = b[np.isin(rec.pid[rec.m1[b]], (23, 25))]
    out = np.full(rec.n_events, np.nan)
    pairs: dict[int, list[int]] = {}
    for i in b:
        pairs.setdefault(int(rec.m1[i]), []).append(int(i))
    done: set[int] = set()
    for mother in sorted(pairs):
        kids = pairs[mother]
        ev = int(rec.event[mother])
        if len(kids) == 2 and ev not in done:
            p = rec.p4[kids[0]] + rec.p4[kids[1]]
            out[ev] = np.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))
            done.add(ev)
    return out


def _n_hard_b(rec: TruthRecord) -> np.ndarray:
    hard = (np.abs(rec.pid) == 5) & (rec.status >= 21) & (rec.status <= 23)
    return np.bincount(rec.event[hard], minlength=rec.n_events).astype(np.float64)


def _tt_hf(rec: TruthRecord, last: np.ndarray) -> np.ndarray:
    tops = np.bincount(rec.event[last & (np.abs(rec.pid) == 6)], minlength=rec.n_events)
    px, py, pz = rec.p4[:, 0], rec.p4[:, 1], rec.p4[:, 2]
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    visible = (pt > HF_PT_MIN) & (np.abs(eta) < HF_ETA_MAX)
    extra = (rec.status >= 31) & (rec.status <= 69) & visible
    extra &= ~rec.has_ancestor((6, 23, 24, 25))
    aid = np.abs(rec.pid)
    has_b = np.bincount(rec.event[extra & (aid == 5)], minlength=rec.n_events) > 0
    has_c = np.bincount(rec.event[extra & (aid == 4)], minlength=rec.n_events) > 0
    flavour = np.where(has_b, 2.0, np.where(has_c, 1.0, 0.0))
    return np.where(tops == 2, flavour, np.nan)


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
        "GenTarget_bosonPt": _boson_pt(rec, rec.has_ancestor((6,))),
        "GenTarget_mbb": _mbb(rec),
        "GenTarget_nHardB": _n_hard_b(rec),
        "GenTarget_ttHF": _tt_hf(rec, last),
    }
    return {name: values[name].astype(np.float32) for name in TARGET_BRANCHES}
