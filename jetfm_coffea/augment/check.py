"""Physics check of the augmentations on real data: the dimuon mass spectrum.

Boosts and rotations are exact Lorentz transformations, so every dimuon invariant
mass -- and therefore the spectrum with its J/psi, Upsilon and Z peaks -- must be
unchanged (before detector acceptance is re-applied). ``jetfm augment-check`` runs
this on the 2012 DoubleMuParked file and writes a before/after plot and a summary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.augment.config import AugmentationPipeline, load_pipeline
from jetfm_coffea.augment.kernels import invariant_mass
from jetfm_coffea.augment.pipeline import augment_objects
from jetfm_coffea.figures import cms_style, save_figure, subplots
from jetfm_coffea.tokens.config import CollectionSpec, TokenConfig

__all__ = [
    "PEAKS",
    "SYMMETRY_PIPELINE",
    "SpectrumCheck",
    "muon_objects",
    "muon_token_config",
    "objects_dimuon_mass",
    "plot_spectra",
    "spectrum_check",
]

PEAKS = {"J/psi": 3.097, "Upsilon(1S)": 9.460, "Z": 91.19}
SYMMETRY_PIPELINE: dict[str, Any] = {
    "seed": 2012,
    "views": 1,
    "steps": [
        {"name": "rotate_phi"},
        {"name": "boost_z", "max_rapidity": 1.0},
        {"name": "boost_transverse", "max_beta": 0.3},
        {"name": "reflect_eta", "probability": 0.5},
    ],
}
BINS = np.geomspace(0.25, 300.0, 301)


def muon_token_config(max_count: int = 4) -> TokenConfig:
    """Muon-only tokens with the CMS muon acceptance (pT > 3 GeV, |eta| < 2.4)."""
    return TokenConfig(
        collections=[
            CollectionSpec(
                name="Muon", type_id=2, max_count=max_count, min_pt=3.0, max_abs_eta=2.4,
                has_charge=True,
            )
        ]
    )  # fmt: skip


def muon_objects(
    path: str | Path, entry_start: int = 0, entry_stop: int | None = None, max_count: int = 4
) -> dict[str, np.ndarray]:
    """Padded muons ``[N, max_count]`` of a muons-only file, read with uproot.

    Such files carry no run/luminosityBlock/event: the entry number is the event id
    (run = luminosityBlock = 0), so the views depend on the entry, not on the chunking.
    """
    import awkward as ak
    import uproot

    with uproot.open(path) as f:
        tree = f["Events"]
        stop = tree.num_entries if entry_stop is None else min(entry_stop, tree.num_entries)
        cols = tree.arrays(
            ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"],
            entry_start=entry_start, entry_stop=stop,
        )  # fmt: skip
    n = len(cols)

    def pad(x: Any, fill: Any) -> np.ndarray:
        return ak.to_numpy(ak.fill_none(ak.pad_none(x, max_count, axis=1, clip=True), fill))

    out = {k: pad(cols[f"Muon_{k}"], 0).astype(np.float32) for k in ("pt", "eta", "phi", "mass")}
    out["charge"] = pad(cols["Muon_charge"], 0).astype(np.float32)
    out["mask"] = pad(ak.ones_like(cols["Muon_pt"], dtype=bool), False).astype(bool)
    out["type_id"] = np.where(out["mask"], 2.0, 0.0).astype(np.float32)
    out["btag"] = np.zeros_like(out["pt"])
    out["run"] = np.zeros(n, np.int64)
    out["luminosityBlock"] = np.zeros(n, np.int64)
    out["event"] = np.arange(entry_start, entry_start + n, dtype=np.int64)
    return out


def objects_dimuon_mass(objects: Any) -> np.ndarray:
    """Invariant mass of the two leading muons in events with exactly two opposite-sign
    muons; NaN for the other events."""
    get = objects.get if isinstance(objects, dict) else lambda k: getattr(objects, k)
    mask = np.asarray(get("mask"))
    two = (mask.sum(1) == 2) & mask[:, 0] & mask[:, 1]
    charge = np.asarray(get("charge"), np.float64)
    two &= charge[:, 0] * charge[:, 1] < 0
    kin = [np.asarray(get(k), np.float64)[:, :2] for k in ("pt", "eta", "phi", "mass")]
    with np.errstate(invalid="ignore"):
        m = invariant_mass(np, *kin)
    return np.where(two, m, np.nan)


@dataclass
class SpectrumCheck:
    """Result of :func:`spectrum_check`."""

    n_events: int
    n_pairs: int
    pipeline_hash: str
    max_rel_mass_change: float
    histogram_max_abs_diff: int
    histogram_total: int
    peaks_before: dict[str, float]
    peaks_after: dict[str, float]
    passed: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"| {name} | {PEAKS[name]:.3f} | {self.peaks_before[name]:.3f} "
            f"| {self.peaks_after[name]:.3f} |"
            for name in PEAKS
        )
        return (
            f"# augment-check: dimuon mass spectrum\n\n"
            f"- events: {self.n_events}, opposite-sign pairs: {self.n_pairs}\n"
            f"- pipeline hash: `{self.pipeline_hash}`\n"
            f"- max |dm|/m over all pairs: {self.max_rel_mass_change:.2e}\n"
            f"- largest histogram bin difference: {self.histogram_max_abs_diff} "
            f"of {self.histogram_total} entries\n"
            f"- result: {'PASS' if self.passed else 'FAIL'}\n\n"
            f"| peak | PDG mass [GeV] | before | after |\n|---|---|---|---|\n{rows}\n"
        )


def _peak(masses: np.ndarray, center: float) -> float:
    """Most populated fine bin within +-8% of ``center``."""
    window = masses[(masses > 0.92 * center) & (masses < 1.08 * center)]
    counts, edges = np.histogram(window, bins=np.linspace(0.92 * center, 1.08 * center, 81))
    i = int(np.argmax(counts))
    return float(0.5 * (edges[i] + edges[i + 1]))


def spectrum_check(
    objects: dict[str, np.ndarray],
    pipeline: AugmentationPipeline | dict | str | None = None,
    tolerance: float = 1e-4,
) -> tuple[SpectrumCheck, np.ndarray, np.ndarray]:
    """Compare the dimuon masses before and after one view (acceptance not re-applied).

    Returns the summary and the per-event masses before and after (NaN: no pair).
    Passes when every pair mass changes by less than ``tolerance`` (relative; float32
    storage rounds at ~1e-7 per component) and all three peaks stay in the same bin.
    """
    pipeline = load_pipeline(SYMMETRY_PIPELINE if pipeline is None else pipeline)
    config = muon_token_config(objects["mask"].shape[1])
    after = augment_objects(objects, pipeline, config, 0, acceptance=False)
    m0, m1 = objects_dimuon_mass(objects), objects_dimuon_mass(after)
    pair = np.isfinite(m0)
    rel = np.abs(m1[pair] - m0[pair]) / m0[pair]
    h0, _ = np.histogram(m0[pair], BINS)
    h1, _ = np.histogram(m1[pair], BINS)
    peaks0 = {k: _peak(m0[pair], v) for k, v in PEAKS.items()}
    peaks1 = {k: _peak(m1[pair], v) for k, v in PEAKS.items()}
    max_rel = float(rel.max()) if rel.size else 0.0
    result = SpectrumCheck(
        n_events=len(m0),
        n_pairs=int(pair.sum()),
        pipeline_hash=pipeline.hash(),
        max_rel_mass_change=max_rel,
        histogram_max_abs_diff=int(np.abs(h1 - h0).max()),
        histogram_total=int(h0.sum()),
        peaks_before=peaks0,
        peaks_after=peaks1,
        passed=bool(max_rel < tolerance and peaks0 == peaks1 and np.isfinite(m1[pair]).all()),
    )
    return result, m0, m1


def plot_spectra(m_before: np.ndarray, m_after: np.ndarray, path: str | Path, label: str) -> Path:
    """Before/after dimuon mass spectra (log-log, CMS style) with a ratio panel, as PNG."""
    h0, _ = np.histogram(m_before[np.isfinite(m_before)], BINS)
    h1, _ = np.histogram(m_after[np.isfinite(m_after)], BINS)
    with cms_style():
        fig, (ax, rax) = subplots(
            2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        _draw_spectra(ax, rax, h0, h1, label)
        return save_figure(fig, path, dpi=80, tight=False)


def _draw_spectra(ax: Any, rax: Any, h0: np.ndarray, h1: np.ndarray, label: str) -> None:
    import mplhep

    mplhep.histplot(h0, BINS, ax=ax, label="original", color="black")
    mplhep.histplot(h1, BINS, ax=ax, label=f"augmented ({label})", color="tab:red", ls="--")
    for name, mass in PEAKS.items():
        ax.axvline(mass, color="grey", lw=0.8, ls=":")
        ax.text(mass * 1.05, max(h0.max(), 1) * 0.3, name, fontsize=12)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("pairs / bin")
    ax.legend(fontsize=14)
    mplhep.cms.text("Open Data", ax=ax, loc=0)
    filled = h0 > 0
    centers = np.sqrt(BINS[1:] * BINS[:-1])[filled]
    rax.plot(centers, h1[filled] / h0[filled], "o", ms=3, color="tab:red")
    rax.axhline(1.0, color="black", lw=0.8)
    rax.set_ylim(0.95, 1.05)
    rax.set_ylabel("aug. / orig.")
    rax.set_xlabel(r"$m_{\mu\mu}$ [GeV]")
