"""Systematic variations of the token inputs: scale objects, propagate to MET, vary the
unclustered energy -- applied inside the one token path (:func:`~.build.select_objects`).

A :class:`Variation` scales the momenta (pT and mass, so the direction is kept) of the
objects of named collections, *before* the collection's selection (objects migrate
across the pT threshold as in any analysis):

- a float ``delta`` scales every object by ``1 + delta`` (jet energy scale ``Jet:
  0.03``, a lepton scale ``Muon: 0.002``);
- a string names a field of that collection holding per-object scale factors (jet
  energy resolution from coffea's ``jetmet_tools``: ``Jet: "jer_up"`` after the
  processor set ``events["Jet", "jer_up"] = jets.JER.up.pt / jets.pt``).

MET (the ``met`` collection) is propagated as the type-1 convention of the token
builder's augmentations: ``MET -= sum of the change of the transverse momentum of the
varied objects``, summed over the objects that pass their collection's acceptance
(pT, |eta|, ID cuts; before the ``max_count`` truncation) in the nominal event.
``unclustered=d`` scales the unclustered recoil ``U = -(MET + sum of accepted
objects)`` by ``1 + d``: ``MET -= d * U``. A variation with nothing to vary gives the
nominal tokens bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jetfm_coffea.errors import ConfigError

__all__ = ["Variation", "load_variations", "standard_variations"]


@dataclass(frozen=True)
class Variation:
    """One systematic variation of the inputs (see the module docstring)."""

    scales: Mapping[str, float | str] = field(default_factory=dict)
    unclustered: float = 0.0

    def __post_init__(self) -> None:
        for name, value in self.scales.items():
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ConfigError(
                    f"variation of {name}: {value!r} is neither a relative scale (float) nor "
                    "the name of a per-object scale-factor field"
                )
            if not isinstance(value, str) and not value > -1:
                raise ConfigError(f"variation of {name}: scale 1 + {value} is not positive")
        object.__setattr__(self, "scales", dict(self.scales))

    def factor(self, collection: str) -> float | str | None:
        """``1 + delta`` or the per-object factor field of ``collection``; None: unvaried."""
        value = self.scales.get(collection)
        if value is None or isinstance(value, str):
            return value
        return None if value == 0 else 1.0 + float(value)

    def fields(self) -> dict[str, str]:
        """Collection -> per-object factor field read from the events."""
        return {k: v for k, v in self.scales.items() if isinstance(v, str)}


def load_variations(spec: Mapping[str, Any] | None) -> dict[str, Variation]:
    """``{name: Variation | {"scales": {...}, "unclustered": d} | {collection: delta}}``."""
    out: dict[str, Variation] = {}
    for name, value in (spec or {}).items():
        if not str(name).isidentifier():
            raise ConfigError(f"variation name {name!r} must be an identifier (a record field)")
        if isinstance(value, Variation):
            out[name] = value
        elif isinstance(value, Mapping) and set(value) <= {"scales", "unclustered"}:
            out[name] = Variation(value.get("scales", {}), float(value.get("unclustered", 0.0)))
        elif isinstance(value, Mapping):
            out[name] = Variation(value)
        else:
            raise ConfigError(f"variation {name}: {value!r} is not a mapping")
    return out


def standard_variations(
    names: list[str] | tuple[str, ...] = ("JES", "JER", "lepton", "unclustered"),
    *,
    jes: float = 0.03,
    jer: tuple[str, str] | float = 0.05,
    muon: float = 0.002,
    electron: float = 0.005,
    unclustered: float = 0.10,
) -> dict[str, Variation]:
    """``<NAME>_up`` / ``<NAME>_down`` for each of ``names`` (JES, JER, lepton, unclustered).

    Defaults (relative): JES 3%, lepton scale 0.2% (muons) / 0.5% (electrons),
    unclustered energy 10%. JER: a pair of per-jet factor field names (up, down) from
    ``jetmet_tools``, or a float: a jet-pT scale of +/- that much (a stand-in for
    files without the resolution corrections; say so when you use it).
    """
    out: dict[str, Variation] = {}
    for name in names:
        key = name.upper() if name.upper() in ("JES", "JER") else name
        for sign, suffix in ((1, "up"), (-1, "down")):
            if key == "JES":
                v = Variation({"Jet": sign * jes})
            elif key == "JER":
                value = jer[0 if sign > 0 else 1] if isinstance(jer, tuple) else sign * jer
                v = Variation({"Jet": value})
            elif key == "lepton":
                v = Variation({"Muon": sign * muon, "Electron": sign * electron})
            elif key == "unclustered":
                v = Variation(unclustered=sign * unclustered)
            else:
                raise ConfigError(
                    f"unknown variation {name!r}: choose from JES, JER, lepton, unclustered"
                )
            out[f"{key}_{suffix}"] = v
    return out
