"""Declarative table of the physics processes the built-in generator knows.

Each :class:`ProcessSpec` maps a short name to the Pythia 8 settings that produce it,
an integer class label (stable: downstream classifiers and label-efficiency studies
key on it) and an optional default p̂T range.

======== ===== ================================================================
name     label Pythia 8 processes and decays
======== ===== ================================================================
ttbar    0     ``Top:gg2ttbar``, ``Top:qqbar2ttbar``; inclusive top decays
wjets    1     ``WeakBosonAndParton:qqbar2Wg`` + ``qg2Wq`` (W + 1 parton,
               p̂T > 20 GeV), W → eν, μν, τν
zjets    2     ``WeakSingleBoson:ffbar2gmZ`` (Z/γ*, m̂ > 50 GeV, jets from the
               parton shower), Z/γ* → ee, μμ, ττ
qcd      3     ``HardQCD:all``, p̂T > 50 GeV by default (``pthat_min``/``pthat_max``)
hbb      4     ``HiggsSM:ffbar2HZ`` + ``ffbar2HW``, H → bb̄, Z → ℓℓ/νν, W → ℓν
diboson  5     ``WeakDoubleBoson:all`` (WW, WZ, ZZ), inclusive decays
======== ===== ================================================================

Centre-of-mass energies: :data:`SQRTS_CHOICES` (GeV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jetfm_coffea.errors import ConfigError

__all__ = ["PROCESSES", "SQRTS_CHOICES", "ProcessSpec", "get_process", "pythia_settings"]

SQRTS_CHOICES: tuple[int, ...] = (8000, 13000, 13600)
"""Allowed proton-proton centre-of-mass energies in GeV (2012, 2015-18, 2022+)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One generator process: Pythia settings, class label, default p̂T range."""

    name: str
    label: int
    description: str
    settings: tuple[str, ...]
    pthat_min: float | None = None
    pthat_max: float | None = None


PROCESSES: dict[str, ProcessSpec] = {
    spec.name: spec
    for spec in (
        ProcessSpec(
            "ttbar",
            0,
            "top-quark pair production, inclusive decays",
            ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
        ),
        ProcessSpec(
            "wjets",
            1,
            "W + jets, W -> l nu (l = e, mu, tau)",
            (
                "WeakBosonAndParton:qqbar2Wg = on",
                "WeakBosonAndParton:qg2Wq = on",
                "24:onMode = off",
                "24:onIfAny = 11 13 15",
            ),
            pthat_min=20.0,
        ),
        ProcessSpec(
            "zjets",
            2,
            "Drell-Yan Z/gamma* -> l l (m > 50 GeV) + jets from the shower",
            (
                "WeakSingleBoson:ffbar2gmZ = on",
                "PhaseSpace:mHatMin = 50.",
                "23:onMode = off",
                "23:onIfAny = 11 13 15",
            ),
        ),
        ProcessSpec(
            "qcd",
            3,
            "QCD multijet production (all 2 -> 2 hard QCD processes)",
            ("HardQCD:all = on",),
            pthat_min=50.0,
        ),
        ProcessSpec(
            "hbb",
            4,
            "associated VH production, H -> b bbar, Z -> ll/nunu, W -> l nu",
            (
                "HiggsSM:ffbar2HZ = on",
                "HiggsSM:ffbar2HW = on",
                "25:onMode = off",
                "25:onIfMatch = 5 -5",
                "23:onMode = off",
                "23:onIfAny = 11 12 13 14 15 16",
                "24:onMode = off",
                "24:onIfAny = 11 13 15",
            ),
        ),
        ProcessSpec(
            "diboson",
            5,
            "WW, WZ and ZZ production, inclusive decays",
            ("WeakDoubleBoson:all = on",),
        ),
    )
}
"""All known processes by name."""


def get_process(name: str) -> ProcessSpec:
    """Return the :class:`ProcessSpec` called ``name`` or raise :class:`ConfigError`."""
    try:
        return PROCESSES[name]
    except KeyError:
        known = ", ".join(sorted(PROCESSES))
        raise ConfigError(f"unknown process {name!r}; known processes: {known}") from None


def pythia_settings(
    spec: ProcessSpec,
    sqrts: float,
    seed: int,
    pthat_min: float | None = None,
    pthat_max: float | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Full list of Pythia ``readString`` settings for ``spec`` at ``sqrts`` with ``seed``.

    ``pthat_min``/``pthat_max`` override the process defaults (``None`` keeps them);
    ``extra`` settings come last (e.g. ``"24:onPosIfAny = 11 13"`` to choose decays).
    ``seed`` must lie in Pythia's range 1..900000000.
    """
    lo = spec.pthat_min if pthat_min is None else pthat_min
    hi = spec.pthat_max if pthat_max is None else pthat_max
    out = [
        f"Beams:eCM = {float(sqrts)}",
        *spec.settings,
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
    ]
    if lo is not None:
        out.append(f"PhaseSpace:pTHatMin = {float(lo)}")
    if hi is not None:
        out.append(f"PhaseSpace:pTHatMax = {float(hi)}")
    out.extend(extra)
    return out
