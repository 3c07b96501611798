"""Systematic variations of the token inputs, in the analysis's terms: per-collection
momentum *factors* (or *shifts*), what they vary, MET propagation, the unclustered
energy -- applied inside the one token path (:func:`~.build.select_objects`).

A :class:`Variation` multiplies the momenta of the objects of named collections by a
factor, *before* the collection's selection (objects migrate across the pT threshold
as in any analysis). Its meaning is always spelled out:

- ``Variation.factor({"Jet": 1.03})``: jet pT times 1.03 (what analyses store: a jet
  energy scale up is 1.03, down 0.97);
- ``Variation.shift({"Jet": 0.03})``: the same thing written as a relative shift
  ``1 + 0.03``;
- a factor may also be per object: the name of a field of the collection holding
  per-object factors (``{"Jet": "jer_up"}`` after the processor set
  ``events["Jet", "jer_up"] = corrected.JER.up.pt / corrected.pt``), or a jagged
  array aligned with the collection, one factor per object (``{"Jet":
  jets.pt_res_up}``, the shape analyses keep such factors in; eager and virtual
  NanoEvents -- in dask mode assign it as a field and name the field).

What is varied (``vary``):

- ``"pt+mass+met"`` (default): pT and mass are scaled together (the direction and
  rapidity are kept, the energy scales too) and MET is type-1 propagated:
  ``MET -= sum of the change of the transverse momentum of the varied objects``, over
  the objects that pass their collection's acceptance (pT, |eta|, ID cuts; before the
  ``max_count`` truncation) in the nominal event -- the usual CMS convention;
- ``"pt"``: pT alone, mass and MET unchanged -- what a ``jets.pt * factor``
  variation of an analysis does (the AGC tt̄ analysis's ``pt_scale_up``); tokens
  then agree with the analysis's own varied objects bit for bit.

``unclustered=d`` scales the unclustered recoil ``U = -(MET + sum of accepted
objects)`` by ``1 + d``: ``MET -= d * U``. A variation with nothing to vary gives the
nominal tokens bit for bit. Constructing a :class:`Variation` takes keywords only
(``Variation(factors=..., vary=..., unclustered=...)``): no bare number whose meaning
must be guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from jetfm_coffea.errors import ConfigError

__all__ = ["VARIED", "Variation", "load_variations", "standard_variations"]

#: What a variation varies: pT only, or pT and mass with MET type-1 propagated.
VARIED: tuple[str, ...] = ("pt+mass+met", "pt")


def _is_array(value: Any) -> bool:
    return hasattr(value, "ndim") and not isinstance(value, np.generic | str)


@dataclass(frozen=True, kw_only=True)
class Variation:
    """One systematic variation of the inputs (see the module docstring).

    ``factors``: collection -> momentum factor (a number like ``1.03``, a per-object
    factor field name, or a jagged per-object array aligned with the collection).
    """

    factors: Mapping[str, Any] = field(default_factory=dict)
    unclustered: float = 0.0
    vary: Literal["pt+mass+met", "pt"] = "pt+mass+met"

    def __post_init__(self) -> None:
        if self.vary not in VARIED:
            raise ConfigError(f"variation vary={self.vary!r}: choose from {list(VARIED)}")
        for name, value in self.factors.items():
            if isinstance(value, str) or _is_array(value):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"variation of {name}: {value!r} is neither a momentum factor (a number "
                    "like 1.03), a per-object factor field name, nor a per-object array"
                )
            if not value > 0:
                raise ConfigError(f"variation of {name}: factor {value} is not positive")
        if self.vary == "pt" and self.unclustered:
            raise ConfigError("variation vary='pt' leaves MET alone: unclustered must be 0")
        object.__setattr__(self, "factors", dict(self.factors))

    @classmethod
    def factor(
        cls,
        factors: Mapping[str, Any],
        *,
        vary: Literal["pt+mass+met", "pt"] = "pt+mass+met",
        unclustered: float = 0.0,
    ) -> Variation:
        """Momenta times the given factors: ``Variation.factor({"Jet": 1.03})``."""
        return cls(factors=factors, vary=vary, unclustered=unclustered)

    @classmethod
    def shift(
        cls,
        shifts: Mapping[str, float],
        *,
        vary: Literal["pt+mass+met", "pt"] = "pt+mass+met",
        unclustered: float = 0.0,
    ) -> Variation:
        """Momenta times ``1 + shift``: ``Variation.shift({"Jet": 0.03})`` is a factor 1.03."""
        out = {}
        for name, value in shifts.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"variation of {name}: a shift is a number (0.03 for +3%), not {value!r}"
                )
            out[name] = 1.0 + float(value)
        return cls(factors=out, vary=vary, unclustered=unclustered)

    @property
    def propagates(self) -> bool:
        """Whether mass is scaled with pT and the change propagated to MET."""
        return self.vary == "pt+mass+met"

    def factor_of(self, collection: str) -> float | str | Any | None:
        """The factor of ``collection`` (number, field name or array); None: unvaried."""
        value = self.factors.get(collection)
        if value is None or isinstance(value, str) or _is_array(value):
            return value
        return None if value == 1 else float(value)

    def fields(self) -> dict[str, str]:
        """Collection -> per-object factor field read from the events."""
        return {k: v for k, v in self.factors.items() if isinstance(v, str)}

    def has_arrays(self) -> bool:
        """Whether some factor is a per-object array (it belongs to one chunk of events)."""
        return any(_is_array(v) for v in self.factors.values())

    def select(self, mask: Any) -> Variation:
        """The same variation for ``events[mask]``: per-object arrays are sliced alike."""
        if not self.has_arrays():
            return self
        return replace(
            self, factors={k: v[mask] if _is_array(v) else v for k, v in self.factors.items()}
        )


def load_variations(spec: Mapping[str, Any] | None) -> dict[str, Variation]:
    """``{name: Variation | {"factors": {...}, "vary": ..., "unclustered": d}
    | {"shifts": {...}, ...}}`` -- a plain ``{collection: number}`` is refused (factor
    or shift? say which)."""
    out: dict[str, Variation] = {}
    keys = {"factors", "shifts", "unclustered", "vary"}
    for name, value in (spec or {}).items():
        if not str(name).isidentifier():
            raise ConfigError(f"variation name {name!r} must be an identifier (a record field)")
        if isinstance(value, Variation):
            out[name] = value
        elif isinstance(value, Mapping) and set(value) <= keys:
            if "factors" in value and "shifts" in value:
                raise ConfigError(f"variation {name}: give factors or shifts, not both")
            options = {
                "unclustered": float(value.get("unclustered", 0.0)),
                "vary": value.get("vary", "pt+mass+met"),
            }
            if "shifts" in value:
                out[name] = Variation.shift(value["shifts"], **options)
            else:
                out[name] = Variation.factor(value.get("factors", {}), **options)
        elif isinstance(value, Mapping):
            raise ConfigError(
                f"variation {name}: {dict(value)!r} does not say whether its numbers are "
                "factors (1.03) or shifts (0.03): write Variation.factor({...}) / "
                "Variation.shift({...}) or {'factors': {...}} / {'shifts': {...}}"
            )
        else:
            raise ConfigError(f"variation {name}: {value!r} is not a Variation or a mapping")
    return out


def standard_variations(
    names: list[str] | tuple[str, ...] = ("JES", "JER", "lepton", "unclustered"),
    *,
    jes: float = 0.03,
    jer: tuple[str, str] | float = 0.05,
    muon: float = 0.002,
    electron: float = 0.005,
    unclustered: float = 0.10,
    vary: Literal["pt+mass+met", "pt"] = "pt+mass+met",
) -> dict[str, Variation]:
    """``<NAME>_up`` / ``<NAME>_down`` for each of ``names`` (JES, JER, lepton, unclustered).

    Defaults are relative shifts: JES 3% (factors 1.03 / 0.97), lepton scale 0.2%
    (muons) / 0.5% (electrons), unclustered energy 10%. JER: a pair of per-jet factor
    field names (up, down) from ``jetmet_tools``, or a float: a jet-pT shift of +/- that
    much (a stand-in for files without the resolution corrections; say so when you use
    it). ``vary``: what the object variations vary (see the module docstring).
    """
    out: dict[str, Variation] = {}
    for name in names:
        key = name.upper() if name.upper() in ("JES", "JER") else name
        for sign, suffix in ((1, "up"), (-1, "down")):
            if key == "JES":
                v = Variation.shift({"Jet": sign * jes}, vary=vary)
            elif key == "JER":
                if isinstance(jer, tuple):
                    v = Variation.factor({"Jet": jer[0 if sign > 0 else 1]}, vary=vary)
                else:
                    v = Variation.shift({"Jet": sign * jer}, vary=vary)
            elif key == "lepton":
                v = Variation.shift({"Muon": sign * muon, "Electron": sign * electron}, vary=vary)
            elif key == "unclustered":
                v = Variation(unclustered=sign * unclustered)
            else:
                raise ConfigError(
                    f"unknown variation {name!r}: choose from JES, JER, lepton, unclustered"
                )
            out[f"{key}_{suffix}"] = v
    return out
