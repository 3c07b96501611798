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
tth      6     ``HiggsSM:gg2Httbar`` + ``qqbar2Httbar``, H → bb̄; inclusive top decays
vz_bb    7     ``WeakDoubleBoson:ffbar2ZW`` + ``ffbar2gmZgmZ`` (pure Z), one Z → bb̄,
               the other boson Z → ℓℓ/νν or W → ℓν (truth filter ``one_z_to_bb``):
               the VZ(bb) background of ``hbb``'s VH(bb)
st_t     8     ``Top:qq2tq(t:W)``: t-channel single top, inclusive top decays
st_s     9     ``Top:ffbar2tqbar(s:W)``: s-channel single top, inclusive decays
ggh      10    ``HiggsSM:gg2H``: gluon-fusion Higgs, inclusive Higgs decays
vbfh     11    ``HiggsSM:ff2Hff(t:WW)`` + ``ff2Hff(t:ZZ)``: vector-boson fusion,
               inclusive Higgs decays
gjets    12    ``PromptPhoton:all`` (γ + jet, p̂T > 30 GeV)
znunu    13    ``WeakBosonAndParton:qqbar2gmZg`` + ``qg2gmZq`` (pure Z, p̂T > 50 GeV),
               Z → νν: jets and missing pT
======== ===== ================================================================

Pythia 8.317 has no built-in tW process (its ``Top:*`` processes are tt̄ and the t- and
s-channel), so tW is not among them. tt̄ events carry the flavour of their extra
(shower) quarks as a truth label, ``GenTarget_ttHF`` (tt̄ + b / + c / + light; see
:mod:`jetfm_coffea.generate.targets`), rather than being a process of their own.

A process with a ``truth_filter`` keeps only the generated events the named filter of
:data:`TRUTH_FILTERS` accepts (Pythia's decay tables cannot give the two Z bosons of
ZZ different decays); its cross-section is multiplied by the filter efficiency.

Centre-of-mass energies: :data:`SQRTS_CHOICES` (GeV).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.registry import Registry

__all__ = [
    "PROCESSES",
    "SQRTS_CHOICES",
    "TRUTH_FILTERS",
    "ProcessSpec",
    "one_z_to_bb",
    "pythia_settings",
    "register_process",
]

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
    truth_filter: str | None = None


def _resonance_decays(prt: ak.Array, mother_id: int, daughter_id: int) -> np.ndarray:
    """Per event: number of hard-process daughters ``|id| == daughter_id`` of a ``mother_id``.

    ``prt`` is the ``prt`` record of ``Pythia.nextBatch`` (fields ``id``, ``status``,
    ``mother1``); resonance decay products carry |status| 22/23 and point at their
    resonance through ``mother1``.
    """
    pid, status, mother = prt["id"], prt["status"], prt["mother1"]
    mother_pid = pid[ak.values_astype(np.maximum(mother, 0), np.int64)]
    hard = (np.abs(status) >= 22) & (np.abs(status) <= 23)
    hit = hard & (np.abs(pid) == daughter_id) & (np.abs(mother_pid) == mother_id) & (mother > 0)
    return ak.to_numpy(ak.sum(hit, axis=1))


def one_z_to_bb(prt: ak.Array) -> np.ndarray:
    """Events with exactly one Z → bb̄ (the other bosons decay as their tables say)."""
    return _resonance_decays(prt, 23, 5) == 2


TRUTH_FILTERS: dict[str, Callable[[Any], np.ndarray]] = {"one_z_to_bb": one_z_to_bb}
"""Event filters on the Pythia record, by name (see :attr:`ProcessSpec.truth_filter`)."""


#: All known processes by name: the generator's process library.
PROCESSES: Registry[ProcessSpec] = Registry(
    "process",
    hint="add one with jetfm_coffea.generate.register_process",
    same=lambda old, new: old == new,
)


def register_process(spec: ProcessSpec) -> ProcessSpec:
    """Add ``spec`` to :data:`PROCESSES`; its label (the class number written with every
    event) must be new."""
    for other in PROCESSES.values():
        if other.label == spec.label and other.name != spec.name:
            raise ConfigError(f"process {spec.name!r}: label {spec.label} is {other.name!r}'s")
    return PROCESSES.register(spec.name, spec)


for _spec in (
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
    ProcessSpec(
        "tth",
        6,
        "ttH production (gg and qqbar), H -> b bbar, inclusive top decays",
        (
            "HiggsSM:gg2Httbar = on",
            "HiggsSM:qqbar2Httbar = on",
            "25:onMode = off",
            "25:onIfMatch = 5 -5",
        ),
    ),
    ProcessSpec(
        "vz_bb",
        7,
        "WZ and ZZ production, one Z -> b bbar, the other boson Z -> ll/nunu, W -> l nu",
        (
            "WeakDoubleBoson:ffbar2ZW = on",
            "WeakDoubleBoson:ffbar2gmZgmZ = on",
            "WeakZ0:gmZmode = 2",
            "23:onMode = off",
            "23:onIfAny = 5 11 12 13 14 15 16",
            "24:onMode = off",
            "24:onIfAny = 11 13 15",
        ),
        truth_filter="one_z_to_bb",
    ),
    ProcessSpec(
        "st_t",
        8,
        "t-channel single top, inclusive top decays",
        ("Top:qq2tq(t:W) = on",),
    ),
    ProcessSpec(
        "st_s",
        9,
        "s-channel single top, inclusive top decays",
        ("Top:ffbar2tqbar(s:W) = on",),
    ),
    ProcessSpec(
        "ggh",
        10,
        "gluon-fusion Higgs production, inclusive Higgs decays",
        ("HiggsSM:gg2H = on",),
    ),
    ProcessSpec(
        "vbfh",
        11,
        "vector-boson-fusion Higgs production, inclusive Higgs decays",
        ("HiggsSM:ff2Hff(t:WW) = on", "HiggsSM:ff2Hff(t:ZZ) = on"),
    ),
    ProcessSpec(
        "gjets",
        12,
        "prompt photon + jet (all prompt-photon processes)",
        ("PromptPhoton:all = on",),
        pthat_min=30.0,
    ),
    ProcessSpec(
        "znunu",
        13,
        "Z + jet, Z -> nu nu (invisible): jets and missing transverse momentum",
        (
            "WeakBosonAndParton:qqbar2gmZg = on",
            "WeakBosonAndParton:qg2gmZq = on",
            "WeakZ0:gmZmode = 2",
            "23:onMode = off",
            "23:onIfAny = 12 14 16",
        ),
        pthat_min=50.0,
    ),
):
    register_process(_spec)


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
