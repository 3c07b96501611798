"""Physics validation of the generator: analysis functions and the ``--validate`` report.

The checks (also run, on smaller samples, by the test suite):

* Z → μμ: the opposite-sign dimuon mass peaks at 91 ± 2 GeV;
* ttbar, semileptonic selection: the three-jet mass (highest-pT trijet with a b tag)
  peaks at 170 ± 15 GeV;
* W → ℓν: the transverse mass has its Jacobian edge near 80 GeV (the falling half
  maximum lies in 70-95 GeV);
* the mean number of jets above 30 GeV is ordered ttbar > wjets > zjets;
* hard tasks (when their samples are given): the truth mass of the b b̄ pair from the
  Higgs peaks at 125 ± 3 GeV (``tth``, ``hbb``) and from the Z at 91 ± 3 GeV
  (``vz_bb``); every ``tth`` event has two top quarks at the top mass (172.5 GeV).
* the wider pretraining library (when its samples are given): one top quark per
  single-top event (``st_t``, ``st_s``); the Higgs b b̄ truth mass at 125 ± 3 GeV in
  ``ggh`` and ``vbfh``; a reconstructed photon (pT > 25 GeV) in most ``gjets`` events;
  large missing pT in ``znunu`` (mean > 50 GeV), following the Z pT
  (``GenTarget_bosonPt``, correlation > 0.6); the tt̄ extra-flavour label
  (``GenTarget_ttHF``) gives a few per cent tt̄ + b and tt̄ + c.
* the generated 8 TeV dimuon spectrum is compared, near the Z, with the real 2012
  ``Run2012_DoubleMuParked_muons_100k.root`` (plot only: the real file is data with
  its own trigger and has no isolation variables).

The analysis functions take awkward arrays of NanoAOD branches as read by uproot
(``Muon_pt``, ``Jet_pt``, ...), so they work on generated and real files alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea.cluster import Execution
from jetfm_coffea.figures import save_figure, styled, subplots
from jetfm_coffea.generate.detector import BTAG_WP_MEDIUM

__all__ = [
    "dimuon_mass",
    "jacobian_edge",
    "jet_multiplicity",
    "library_checks",
    "load_events",
    "peak_position",
    "photon_fraction",
    "run_validation",
    "trijet_mass",
    "truth_bb_mass",
    "truth_top_mass",
    "validation_plan",
    "w_transverse_mass",
    "write_validation_report",
]


def load_events(files: Sequence[str | os.PathLike[str]], branches: Sequence[str]) -> ak.Array:
    """Read ``branches`` of the ``Events`` trees of ``files`` into one awkward array."""
    import uproot

    return uproot.concatenate([{str(f): "Events"} for f in files], list(branches), library="ak")


def _p4(pt: Any, eta: Any, phi: Any, mass: Any) -> tuple[Any, Any, Any, Any]:
    return (
        pt * np.cos(phi),
        pt * np.sin(phi),
        pt * np.sinh(eta),
        np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2),
    )


def _inv_mass(px: Any, py: Any, pz: Any, e: Any) -> Any:
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def dimuon_mass(events: ak.Array, pt_min: float = 10.0, isolated: bool = False) -> np.ndarray:
    """Mass of events with exactly two muons (pT > ``pt_min``, |η| < 2.4) of opposite sign.

    ``isolated`` also requires ``Muon_pfRelIso04_all < 0.15`` (generated files only).
    """
    sel = (events["Muon_pt"] > pt_min) & (np.abs(events["Muon_eta"]) < 2.4)
    if isolated:
        sel = sel & (events["Muon_pfRelIso04_all"] < 0.15)
    pt, eta, phi = events["Muon_pt"][sel], events["Muon_eta"][sel], events["Muon_phi"][sel]
    charge = events["Muon_charge"][sel]
    two = (ak.num(pt) == 2) & (ak.sum(charge, axis=1) == 0)
    px, py, pz, e = _p4(pt[two], eta[two], phi[two], 0.10566)
    mass = _inv_mass(ak.sum(px, axis=1), ak.sum(py, axis=1), ak.sum(pz, axis=1), ak.sum(e, axis=1))
    return ak.to_numpy(mass).astype(np.float64)


def _tight_leptons(events: ak.Array, pt_min: float) -> tuple[ak.Array, ak.Array, ak.Array]:
    """Tight, isolated muons and electrons (pT > ``pt_min``, |η| < 2.4): pt, eta, phi."""
    mu = (
        (events["Muon_pt"] > pt_min)
        & (np.abs(events["Muon_eta"]) < 2.4)
        & events["Muon_tightId"]
        & (events["Muon_pfRelIso04_all"] < 0.15)
    )
    el = (
        (events["Electron_pt"] > pt_min)
        & (np.abs(events["Electron_eta"]) < 2.4)
        & (events["Electron_cutBased"] >= 4)
    )
    pt = ak.concatenate([events["Muon_pt"][mu], events["Electron_pt"][el]], axis=1)
    eta = ak.concatenate([events["Muon_eta"][mu], events["Electron_eta"][el]], axis=1)
    phi = ak.concatenate([events["Muon_phi"][mu], events["Electron_phi"][el]], axis=1)
    return pt, eta, phi


LEPTON_BRANCHES = [
    "Muon_pt", "Muon_eta", "Muon_phi", "Muon_tightId", "Muon_pfRelIso04_all",
    "Electron_pt", "Electron_eta", "Electron_phi", "Electron_cutBased",
]  # fmt: skip
JET_BRANCHES = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId", "Jet_btagDeepFlavB"]


def _good_jets(events: ak.Array, pt_min: float = 30.0, eta_max: float = 2.4) -> ak.Array:
    """Mask of jets above ``pt_min`` inside ``eta_max`` passing tight ID with lepton veto."""
    return (
        (events["Jet_pt"] > pt_min)
        & (np.abs(events["Jet_eta"]) < eta_max)
        & (events["Jet_jetId"] >= 6)
    )


def jet_multiplicity(events: ak.Array, pt_min: float = 30.0) -> np.ndarray:
    """Number of jets per event above ``pt_min`` (|η| < 2.4, tight ID with lepton veto)."""
    return ak.to_numpy(ak.sum(_good_jets(events, pt_min), axis=1))


def trijet_mass(events: ak.Array) -> np.ndarray:
    """Semileptonic ttbar: mass of the highest-pT three-jet system with a b-tagged jet.

    Selection: exactly one tight isolated lepton with pT > 30 GeV, at least four jets
    with pT > 30 GeV and |η| < 2.4, at least one of them b-tagged (medium WP).
    """
    lep_pt, _, _ = _tight_leptons(events, 30.0)
    good = _good_jets(events)
    btag = events["Jet_btagDeepFlavB"][good] > BTAG_WP_MEDIUM
    sel = (ak.num(lep_pt) == 1) & (ak.sum(good, axis=1) >= 4) & (ak.sum(btag, axis=1) >= 1)
    j = events[sel]
    good = good[sel]
    px, py, pz, e = _p4(
        j["Jet_pt"][good], j["Jet_eta"][good], j["Jet_phi"][good], j["Jet_mass"][good]
    )
    jets = ak.zip({"px": px, "py": py, "pz": pz, "e": e, "b": btag[sel]})
    tri = ak.combinations(jets, 3, fields=["a", "b", "c"])
    tpx = tri.a.px + tri.b.px + tri.c.px
    tpy = tri.a.py + tri.b.py + tri.c.py
    tpz = tri.a.pz + tri.b.pz + tri.c.pz
    te = tri.a.e + tri.b.e + tri.c.e
    has_b = tri.a.b | tri.b.b | tri.c.b
    tpt = ak.where(has_b, np.hypot(tpx, tpy), -1.0)
    best = ak.argmax(tpt, axis=1, keepdims=True)
    mass = _inv_mass(tpx[best], tpy[best], tpz[best], te[best])
    return ak.to_numpy(ak.flatten(mass)).astype(np.float64)


GEN_BRANCHES = ["GenPart_pt", "GenPart_eta", "GenPart_phi", "GenPart_mass", "GenPart_pdgId",
                "GenPart_status", "GenPart_statusFlags", "GenPart_genPartIdxMother"]  # fmt: skip


def truth_bb_mass(events: ak.Array, mother_id: int) -> np.ndarray:
    """Truth mass of the hard-process b b̄ pair of a ``mother_id`` boson (25 H, 23 Z).

    Uses the ``GenPart`` record: b quarks with status 23 whose mother (re-pointed to the
    nearest kept ancestor) has ``|pdgId| == mother_id``; one pair per event (the first).
    """
    pdg, mother = events["GenPart_pdgId"], events["GenPart_genPartIdxMother"]
    mother_pdg = pdg[ak.where(mother >= 0, mother, 0)]
    is_b = (np.abs(pdg) == 5) & (events["GenPart_status"] == 23) & (mother >= 0)
    is_b = is_b & (np.abs(mother_pdg) == mother_id)
    two = ak.sum(is_b, axis=1) >= 2
    sel = is_b[two]
    px, py, pz, e = _p4(
        events["GenPart_pt"][two][sel][:, :2],
        events["GenPart_eta"][two][sel][:, :2],
        events["GenPart_phi"][two][sel][:, :2],
        events["GenPart_mass"][two][sel][:, :2],
    )
    mass = _inv_mass(ak.sum(px, axis=1), ak.sum(py, axis=1), ak.sum(pz, axis=1), ak.sum(e, axis=1))
    return ak.to_numpy(mass).astype(np.float64)


def truth_top_mass(events: ak.Array) -> np.ndarray:
    """Masses of the last-copy top quarks of the ``GenPart`` record (all events, flat)."""
    last = (events["GenPart_statusFlags"] & (1 << 13)) != 0
    top = (np.abs(events["GenPart_pdgId"]) == 6) & last
    return ak.to_numpy(ak.flatten(events["GenPart_mass"][top])).astype(np.float64)


def w_transverse_mass(events: ak.Array) -> np.ndarray:
    """W → ℓν: transverse mass of the single tight isolated lepton (pT > 25 GeV) and MET."""
    pt, _, phi = _tight_leptons(events, 25.0)
    one = ak.num(pt) == 1
    lpt, lphi = pt[one][:, 0], phi[one][:, 0]
    met, mphi = events["MET_pt"][one], events["MET_phi"][one]
    mt = np.sqrt(np.maximum(2 * lpt * met * (1 - np.cos(lphi - mphi)), 0.0))
    return ak.to_numpy(mt).astype(np.float64)


def peak_position(values: np.ndarray, lo: float, hi: float, window: float) -> float:
    """Robust peak estimate: median in [lo, hi], then twice the median within ±``window``."""
    v = np.asarray(values, dtype=float)
    v = v[(v > lo) & (v < hi)]
    if len(v) == 0:
        return float("nan")
    centre = float(np.median(v))
    for _ in range(3):
        near = v[np.abs(v - centre) < window]
        if len(near) == 0:
            break
        centre = float(np.median(near))
    return centre


def jacobian_edge(
    values: np.ndarray, lo: float = 30.0, hi: float = 130.0, width: float = 5.0
) -> float:
    """Position where the distribution falls to half of its maximum, above the maximum.

    The histogram (bins of ``width`` in [lo, hi]) is smoothed over three bins and the
    crossing is interpolated linearly between bin centres.
    """
    counts, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    centres = 0.5 * (edges[1:] + edges[:-1])
    smooth = np.convolve(counts, np.ones(3) / 3.0, mode="same")
    top = int(np.argmax(smooth))
    half = smooth[top] / 2.0
    for i in range(top + 1, len(smooth)):
        if smooth[i] < half:
            frac = (smooth[i - 1] - half) / (smooth[i - 1] - smooth[i])
            return float(centres[i - 1] + frac * width)
    return float(centres[-1])


# ----------------------------------------------------------------------------- report


_OTHER_BRANCHES = ("Muon_charge", "MET_pt", "MET_phi", "nJet", "GenTarget_nuPt",
                   "GenTarget_bosonPt", "GenTarget_ttHF", "Photon_pt", "Photon_eta")  # fmt: skip


def _samples_branches() -> list[str]:
    return sorted({*LEPTON_BRANCHES, *JET_BRANCHES, *GEN_BRANCHES, *_OTHER_BRANCHES})


#: Hard-task samples and the boson whose b b̄ truth mass they check: (mother id, GeV).
BB_PEAKS: dict[str, tuple[int, float]] = {"tth": (25, 125.0), "hbb": (25, 125.0),
                                          "vz_bb": (23, 91.2), "ggh": (25, 125.0),
                                          "vbfh": (25, 125.0)}  # fmt: skip
#: The wider pretraining library's samples checked by their own physics (see above).
LIBRARY_SAMPLES = ("st_t", "st_s", "gjets", "znunu")


@styled
def write_validation_report(
    samples: dict[str, Sequence[str | os.PathLike[str]]],
    out: str | os.PathLike[str],
    dimuon_data: str | os.PathLike[str] | None = None,
    metadata: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Make the validation plots and summary from generated files.

    ``samples`` maps ``"ttbar"``, ``"wjets"``, ``"zjets"`` (13 TeV or any common √s) and
    optionally ``"zjets_8TeV"`` to their ROOT files; ``dimuon_data`` is the real 2012
    DoubleMuParked file.  Writes ``*.png``, ``summary.json`` and ``summary.md`` into
    ``out`` and returns the summary (``checks`` holds each value, range and verdict).
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    events = {name: load_events(files, _samples_branches()) for name, files in samples.items()}
    checks: dict[str, dict[str, Any]] = {}
    plots: list[str] = []

    def check(name: str, value: float, lo: float, hi: float, n: int) -> None:
        checks[name] = {"value": value, "range": [lo, hi], "n": n, "pass": bool(lo <= value <= hi)}

    def save(fig: Any, name: str) -> None:
        save_figure(fig, out_dir / name, dpi=90, tight=False)
        plots.append(name)

    # Z -> mumu
    zname = "zjets_8TeV" if "zjets_8TeV" in events else "zjets"
    mll = dimuon_mass(events[zname], isolated=True)
    peak = peak_position(mll, 70.0, 110.0, 6.0)
    check("z_dimuon_peak_gev", peak, 89.0, 93.0, len(mll))
    fig, ax = subplots()
    bins = np.arange(60.0, 121.0, 1.0)
    gen_m = dimuon_mass(events[zname])
    ax.hist(gen_m, bins=bins, density=True, histtype="step", lw=2, label=f"generated {zname}")
    if dimuon_data is not None and Path(dimuon_data).exists():
        data = load_events([dimuon_data], ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_charge"])
        data_m = dimuon_mass(data)
        counts, _ = np.histogram(data_m, bins=bins)
        norm = counts.sum() * np.diff(bins)
        centres = 0.5 * (bins[1:] + bins[:-1])
        ax.errorbar(centres, counts / norm, yerr=np.sqrt(counts) / norm, fmt="ko", ms=3,
                    label="CMS 2012 DoubleMuParked (real)")  # fmt: skip
        check(
            "data_dimuon_peak_gev", peak_position(data_m, 70.0, 110.0, 6.0), 89.0, 93.0, len(data_m)
        )
    ax.set_xlabel(r"$m_{\mu\mu}$ [GeV]")
    ax.set_ylabel("normalised")
    ax.legend(fontsize=14)
    save(fig, "dimuon_mass.png")

    # ttbar trijet mass
    m3 = trijet_mass(events["ttbar"])
    check("ttbar_trijet_peak_gev", peak_position(m3, 100.0, 300.0, 30.0), 155.0, 185.0, len(m3))
    fig, ax = subplots()
    ax.hist(m3, bins=np.arange(50.0, 400.0, 10.0), histtype="step", lw=2, label="ttbar")
    ax.axvline(172.5, ls="--", color="gray")
    ax.set_xlabel(r"$m_{jjj}$ (max $p_T$, $\geq 1$ b tag) [GeV]")
    ax.set_ylabel("events")
    ax.legend(fontsize=14)
    save(fig, "ttbar_trijet_mass.png")

    # W transverse mass
    mt = w_transverse_mass(events["wjets"])
    check("w_mt_edge_gev", jacobian_edge(mt), 70.0, 95.0, len(mt))
    fig, ax = subplots()
    ax.hist(mt, bins=np.arange(0.0, 150.0, 5.0), histtype="step", lw=2, label="wjets")
    ax.axvline(80.4, ls="--", color="gray")
    ax.set_xlabel(r"$m_T(\ell, p_T^{miss})$ [GeV]")
    ax.set_ylabel("events")
    ax.legend(fontsize=14)
    save(fig, "w_transverse_mass.png")

    # jet multiplicity
    means = {}
    fig, ax = subplots()
    for name in ("ttbar", "wjets", "zjets"):
        nj = jet_multiplicity(events[name])
        means[name] = float(np.mean(nj))
        ax.hist(nj, bins=np.arange(-0.5, 12.5), density=True, histtype="step", lw=2,
                label=f"{name} (mean {means[name]:.2f})")  # fmt: skip
    ax.set_xlabel(r"jets with $p_T > 30$ GeV")
    ax.set_ylabel("fraction of events")
    ax.legend(fontsize=14)
    save(fig, "jet_multiplicity.png")
    ordered = means["ttbar"] > means["wjets"] > means["zjets"]
    checks["jet_multiplicity_order"] = {"value": means, "pass": bool(ordered)}

    # regression target: the true MET (W neutrino pT) of W+jets against the reco MET
    nu = ak.to_numpy(events["wjets"]["GenTarget_nuPt"]).astype(float)
    met = ak.to_numpy(events["wjets"]["MET_pt"]).astype(float)
    ok = np.isfinite(nu)
    corr = float(np.corrcoef(nu[ok], met[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    check("wjets_true_met_correlation", corr, 0.5, 1.0, int(ok.sum()))
    fig, ax = subplots()
    edges = np.linspace(0.0, 200.0, 41)
    counts, _, _ = np.histogram2d(nu[ok], met[ok], [edges, edges])
    ax.pcolormesh(edges, edges, counts.T, cmap="Blues")
    ax.plot([0, 200], [0, 200], ls=":", color="grey")
    ax.set_xlabel(r"GenTarget_nuPt (true $p_T^{miss}$) [GeV]")
    ax.set_ylabel(r"reconstructed $p_T^{miss}$ [GeV]")
    save(fig, "true_met.png")

    # hard tasks: truth b b-bar mass of the H / Z, top mass in ttH
    present = [name for name in BB_PEAKS if name in events]
    if present:
        fig, ax = subplots()
        for name in present:
            mother, target = BB_PEAKS[name]
            mbb = truth_bb_mass(events[name], mother)
            peak = peak_position(mbb, target - 30.0, target + 30.0, 5.0)
            check(f"{name}_truth_mbb_peak_gev", peak, target - 3.0, target + 3.0, len(mbb))
            ax.hist(mbb, bins=np.arange(50.0, 160.0, 2.0), histtype="step", lw=2, label=name)
        ax.set_xlabel(r"truth $m_{b\bar{b}}$ [GeV]")
        ax.set_ylabel("events")
        ax.legend(fontsize=14)
        save(fig, "truth_mbb.png")
    if "tth" in events:  # two top quarks per event at the top mass (generator record)
        m_top = truth_top_mass(events["tth"])
        check("tth_truth_top_mass_gev", peak_position(m_top, 150.0, 200.0, 5.0), 170.0, 175.0,
              len(m_top))  # fmt: skip
        n_top = len(m_top) / max(len(events["tth"]), 1)
        checks["tth_tops_per_event"] = {"value": n_top, "range": [2.0, 2.0], "n": len(m_top),
                                        "pass": bool(n_top == 2.0)}  # fmt: skip

    library_checks(events, check)

    summary = {
        "checks": checks,
        "all_pass": all(c["pass"] for c in checks.values()),
        "plots": plots,
        "samples": {k: [str(f) for f in v] for k, v in samples.items()},
        "metadata": metadata or {},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["# jetfm generate: validation report", "", "| check | value | range | pass |",
             "|---|---|---|---|"]  # fmt: skip
    for name, c in checks.items():
        value = c["value"]
        shown = (
            ", ".join(f"{k} {v:.2f}" for k, v in value.items())
            if isinstance(value, dict)
            else f"{value:.2f}"
        )
        rng = f"{c['range'][0]:g}-{c['range'][1]:g}" if "range" in c else "ttbar > wjets > zjets"
        lines.append(f"| {name} | {shown} | {rng} | {'yes' if c['pass'] else 'NO'} |")
    lines += ["", *[f"![{p}]({p})" for p in plots], ""]
    (out_dir / "summary.md").write_text("\n".join(lines))
    return summary


def photon_fraction(events: ak.Array, pt_min: float = 25.0) -> float:
    """Fraction of events with a reconstructed photon (pT > ``pt_min``, |η| < 2.5)."""
    ok = (events["Photon_pt"] > pt_min) & (np.abs(events["Photon_eta"]) < 2.5)
    return float(np.mean(ak.to_numpy(ak.any(ok, axis=1))))


def library_checks(events: dict[str, ak.Array], check: Any) -> None:
    """The wider pretraining library's checks, for the samples present in ``events``."""
    for name in ("st_t", "st_s"):
        if name in events:
            n_top = len(truth_top_mass(events[name])) / max(len(events[name]), 1)
            check(f"{name}_tops_per_event", n_top, 1.0, 1.0, len(events[name]))
    if "gjets" in events:
        check("gjets_photon_fraction", photon_fraction(events["gjets"]), 0.5, 1.0,
              len(events["gjets"]))  # fmt: skip
    if "znunu" in events:
        ev = events["znunu"]
        met = ak.to_numpy(ev["MET_pt"]).astype(float)
        z = ak.to_numpy(ev["GenTarget_bosonPt"]).astype(float)
        check("znunu_mean_met_gev", float(np.mean(met)), 50.0, 1e4, len(met))
        corr = float(np.corrcoef(z, met)[0, 1]) if len(met) > 2 else float("nan")
        check("znunu_met_follows_z_pt", corr, 0.6, 1.0, len(met))
    if "ttbar" in events:
        hf = ak.to_numpy(events["ttbar"]["GenTarget_ttHF"]).astype(float)
        check("ttbar_plus_b_fraction", float(np.mean(hf == 2)), 0.005, 0.15, len(hf))
        check("ttbar_plus_c_fraction", float(np.mean(hf == 1)), 0.01, 0.3, len(hf))


def validation_plan(n_events: int) -> list[tuple[str, int, str, int]]:
    """``(process, sqrts, sample key, events)`` of every validation sample."""
    small = max(n_events // 4, 1)
    return [
        ("ttbar", 13000, "ttbar", n_events),
        ("wjets", 13000, "wjets", n_events),
        ("zjets", 13000, "zjets", n_events),
        ("zjets", 8000, "zjets_8TeV", n_events),
        *[(name, 13000, name, small) for name in BB_PEAKS],
        *[(name, 13000, name, small) for name in LIBRARY_SAMPLES],
    ]


def run_validation(
    out: str | os.PathLike[str],
    n_events: int = 2000,
    seed: int = 1,
    execution: Execution | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Generate the validation samples into ``out/samples`` and write the report to ``out``.

    Samples: ``ttbar``, ``wjets``, ``zjets`` at 13 TeV and ``zjets`` at 8 TeV (compared
    with the real 2012 dimuon file shipped with the package), plus the
    hard-task samples ``tth``, ``hbb`` and ``vz_bb`` and the wider library's ``ggh``,
    ``vbfh``, ``st_t``, ``st_s``, ``gjets`` and ``znunu`` at 13 TeV (a quarter of
    ``n_events`` each: their checks are truth-level peaks, counts and fractions).
    """
    from jetfm_coffea._resources import DIMUON_2012, cms_file
    from jetfm_coffea.generate.run import generate

    out_dir = Path(out)
    sample_dir = out_dir / "samples"
    samples: dict[str, list[Path]] = {}
    metadata: dict[str, dict[str, Any]] = {}
    for process, sqrts, key, n in validation_plan(n_events):
        result = generate(
            process, n, sqrts=sqrts, seed=seed, out=sample_dir, execution=execution,
            progress=progress,
        )  # fmt: skip
        samples[key] = result.files
        metadata[key] = result.metadata
    return write_validation_report(
        samples, out_dir, dimuon_data=cms_file(DIMUON_2012), metadata=metadata
    )
