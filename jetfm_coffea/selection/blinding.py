"""The blinding guard: analysis signal regions that never go into a pretraining set.

A ``blinding:`` section (of a build config, or its own YAML for ``--blind``) names
signal regions as selections on physics objects. It errs on the safe side: by default
(``on: collections``) a region is evaluated on the NanoAOD collections *as read* --
every object of the collections the token config names, without the token config's
pT, |eta| and ID cuts nor its ``max_count`` truncation -- with the region's own cuts
(``min_pt``, ``max_abs_eta``, ``min_btag``, ``charge``) only. An analysis's signal
region is usually defined with its own, often looser, objects: a Z window on every
muon pair removes every event an analysis could select with any muon ID. ``on:
tokens`` evaluates a region on the token objects instead (the objects the one token
path, :mod:`jetfm_coffea.tokens`, keeps), when that is what the analysis uses::

    blinding:
      apply_to_mc: false          # collision data are always blinded
      regions:
        - name: hbb
          all:                    # every condition (any: at least one)
            - {objects: [Jet], min_btag: 0.8, min_pt: 30, min_count: 2}
            - {pair_mass: {objects: [Jet], min_btag: 0.8, min_pt: 30}, min: 100, max: 150}
        - name: hmumu
          all:
            - pair_mass: {objects: [Muon]}
              min: 120
              max: 130
              opposite_charge: true
        - name: hbb_tokens
          on: tokens              # on the token objects (tight ID, pT > 5 GeV...)
          all:
            - {objects: [Jet], min_btag: 0.8, min_count: 2}
        - name: custom
          function: mypackage.regions:in_signal_region   # f(EventObjects) -> bool [N]

Conditions combine with ``all`` / ``any`` and nest (``{any: [...]}`` inside ``all``).
Object types are the token config's collection names. Events inside any region are
removed from shards of collision data (and of simulation with ``apply_to_mc``), and
counted per region.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from jetfm_coffea.config_base import HashedConfig, read_config_file
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens import EventObjects, TokenConfig, select_ragged

__all__ = [
    "BlindingConfig",
    "BlindingError",
    "ObjectSelection",
    "PairMass",
    "Region",
    "as_read_config",
    "as_read_objects",
    "load_blinding",
    "region_masks",
]


class BlindingError(ConfigError):
    """A blinding config is invalid; the message names the file and the key."""

    def __init__(self, where: str, key: str, reason: str):
        self.where, self.key = where, key
        super().__init__(f"blinding config {where}, {key}: {reason}")


class ObjectSelection(BaseModel):
    """Token objects of some types passing pT, |eta|, b-tag and charge requirements."""

    model_config = ConfigDict(extra="forbid")

    objects: list[str] = Field(min_length=1, description="object types (collection names)")
    min_pt: float = Field(0.0, ge=0.0, description="pT > min_pt [GeV]")
    max_abs_eta: float | None = Field(None, gt=0.0, description="|eta| < max_abs_eta")
    min_btag: float | None = Field(None, description="b-tag score >= min_btag")
    charge: int | None = Field(None, description="only objects of this charge")

    def select(self, obj: EventObjects, type_ids: dict[str, int]) -> np.ndarray:
        """Boolean ``[N, T]``: the token slots holding a selected object."""
        sel = obj.mask & np.isin(obj.type_id, [type_ids[name] for name in self.objects])
        sel &= obj.pt > self.min_pt
        if self.max_abs_eta is not None:
            sel &= np.abs(obj.eta) < self.max_abs_eta
        if self.min_btag is not None:
            sel &= obj.btag >= self.min_btag
        if self.charge is not None:
            sel &= obj.charge == self.charge
        return sel


class Count(ObjectSelection):
    """Between ``min_count`` and ``max_count`` selected objects in the event."""

    min_count: int = Field(1, ge=0)
    max_count: int | None = Field(None, ge=0)

    def evaluate(self, obj: EventObjects, type_ids: dict[str, int]) -> np.ndarray:
        n = self.select(obj, type_ids).sum(axis=1)
        out = n >= self.min_count
        return out if self.max_count is None else out & (n <= self.max_count)


class PairMass(BaseModel):
    """Some pair of selected objects has an invariant mass in [min, max] GeV."""

    model_config = ConfigDict(extra="forbid")

    pair_mass: ObjectSelection
    min: float = Field(0.0, ge=0.0, description="lower edge of the window [GeV]")
    max: float = Field(description="upper edge of the window [GeV]")
    opposite_charge: bool = False

    @model_validator(mode="after")
    def _window(self) -> PairMass:
        if not self.max > self.min:
            raise ValueError(f"empty mass window [{self.min}, {self.max}]")
        return self

    def evaluate(self, obj: EventObjects, type_ids: dict[str, int]) -> np.ndarray:
        sel = self.pair_mass.select(obj, type_ids)
        # only the selected objects, moved to the front: [N, K] with K the most per event
        k = int(sel.sum(axis=1).max(initial=0))
        if k < 2:
            return np.zeros(len(sel), bool)
        cols = np.argsort(~sel, axis=1, kind="stable")[:, :k]

        def take(a: np.ndarray) -> np.ndarray:
            return np.take_along_axis(np.asarray(a, np.float64), cols, axis=1)

        sel = np.take_along_axis(sel, cols, axis=1)
        pt, eta, phi, charge = take(obj.pt), take(obj.eta), take(obj.phi), take(obj.charge)
        mass = np.abs(take(obj.mass))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)

        def pair(a: np.ndarray) -> np.ndarray:
            return a[:, :, None] + a[:, None, :]

        m2 = pair(e) ** 2 - pair(px) ** 2 - pair(py) ** 2 - pair(pz) ** 2
        m = np.sqrt(np.clip(m2, 0.0, None))
        both = sel[:, :, None] & sel[:, None, :]
        both &= np.triu(np.ones(both.shape[1:], bool), k=1)  # each pair once, no self-pairs
        if self.opposite_charge:
            both &= (charge[:, :, None] * charge[:, None, :]) < 0
        return (both & (m >= self.min) & (m <= self.max)).any(axis=(1, 2))


class Group(BaseModel):
    """Conditions combined with ``all`` (and) or ``any`` (or); groups nest."""

    model_config = ConfigDict(extra="forbid")

    all: list[Condition] | None = None
    any: list[Condition] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Group:
        given = [k for k in ("all", "any") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'all' or 'any'")
        if not getattr(self, given[0]):
            raise ValueError(f"'{given[0]}' is empty: a region needs at least one condition")
        return self

    @property
    def conditions(self) -> list[Condition]:
        return self.all if self.all is not None else self.any  # type: ignore[return-value]

    def evaluate(self, obj: EventObjects, type_ids: dict[str, int]) -> np.ndarray:
        parts = [c.evaluate(obj, type_ids) for c in self.conditions]
        return np.logical_and.reduce(parts) if self.all is not None else np.logical_or.reduce(parts)


def _condition_kind(value: Any) -> str:
    data = value if isinstance(value, dict) else getattr(value, "__dict__", {})
    if "pair_mass" in data:
        return "pair_mass"
    if "all" in data or "any" in data:
        return "group"
    return "count"


Condition = Annotated[
    Annotated[PairMass, Tag("pair_mass")]
    | Annotated[Count, Tag("count")]
    | Annotated[Group, Tag("group")],
    Discriminator(_condition_kind),
]
Group.model_rebuild()


class Region(BaseModel):
    """One signal region: conditions (``all`` / ``any``) or a ``module:function``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    on: Literal["collections", "tokens"] = Field(
        "collections",
        description="collections: every object as read (the region's own cuts only); "
        "tokens: the objects the token config keeps",
    )
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    function: str | None = Field(
        None, description="'module:function' taking EventObjects, returning a bool mask [N]"
    )

    @model_validator(mode="after")
    def _one_of(self) -> Region:
        given = [k for k in ("all", "any", "function") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"region {self.name!r}: give exactly one of all, any, function")
        if given[0] != "function" and not getattr(self, given[0]):
            raise ValueError(f"region {self.name!r} is empty: '{given[0]}' has no conditions")
        if self.function is not None and self.function.count(":") != 1:
            raise ValueError(f"region {self.name!r}: function must be 'module:function'")
        return self

    def load_function(self) -> Callable[[EventObjects], Any]:
        """Import the `module:function` escape hatch (its hash covers the name only)."""
        module, name = str(self.function).split(":")
        return getattr(importlib.import_module(module), name)

    def evaluate(self, obj: EventObjects, type_ids: dict[str, int]) -> np.ndarray:
        """Boolean ``[N]``: the events inside this region."""
        if self.function is not None:
            out = np.asarray(self.load_function()(obj))
            if out.shape != (len(obj),) or out.dtype != bool:
                raise ConfigError(
                    f"blinding region {self.name!r}: {self.function} returned "
                    f"{out.dtype}{list(out.shape)}, expected a bool mask of {len(obj)} events"
                )
            return out
        return Group(all=self.all, any=self.any).evaluate(obj, type_ids)


class BlindingConfig(HashedConfig):
    """The ``blinding:`` section: signal regions excluded from pretraining shards."""

    model_config = ConfigDict(extra="forbid")

    regions: list[Region] = Field(min_length=1)
    apply_to_mc: bool = Field(False, description="also remove the regions from simulation")

    @model_validator(mode="after")
    def _unique(self) -> BlindingConfig:
        names = [r.name for r in self.regions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"region names must be unique: {', '.join(dup)}")
        return self

    @property
    def reads_collections(self) -> bool:
        """Whether some region is evaluated on the collections as read."""
        return any(r.on == "collections" for r in self.regions)

    def applies_to(self, kind: str) -> bool:
        """Whether events of a dataset of ``kind`` (mc, data, undeclared) are blinded."""
        return kind != "mc" or self.apply_to_mc

    def check(self, token_config: TokenConfig, where: str = "blinding") -> dict[str, int]:
        """Object type ids by name; unknown types and functions raise naming the key."""
        type_ids = {c.name: c.type_id for c in token_config.collections}

        def walk(conditions: list[Condition], key: str) -> None:
            for i, cond in enumerate(conditions):
                at = f"{key}[{i}]"
                if isinstance(cond, Group):
                    walk(cond.conditions, f"{at}.{'all' if cond.all is not None else 'any'}")
                    continue
                sel = cond.pair_mass if isinstance(cond, PairMass) else cond
                sub = f"{at}.pair_mass.objects" if isinstance(cond, PairMass) else f"{at}.objects"
                for name in sel.objects:
                    if name not in type_ids:
                        raise BlindingError(
                            where,
                            sub,
                            f"unknown object type {name!r}; the token config has "
                            f"{', '.join(type_ids)}",
                        )

        for r, region in enumerate(self.regions):
            key = f"regions[{r}] ({region.name})"
            if region.function is not None:
                try:
                    region.load_function()
                except (ImportError, AttributeError) as err:
                    raise BlindingError(
                        where, f"{key}.function", f"cannot import {region.function}: {err}"
                    ) from err
                continue
            branch = "all" if region.all is not None else "any"
            walk(region.all if region.all is not None else region.any or [], f"{key}.{branch}")
        return type_ids

    def summary(self) -> dict[str, Any]:
        """What a data sheet records: the regions (as declared), their hash, apply_to_mc."""
        return {
            "hash": self.hash(),
            "apply_to_mc": self.apply_to_mc,
            "regions": [r.model_dump(mode="json", exclude_none=True) for r in self.regions],
        }


def _error_key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("pair_mass", "count", "group") and out.endswith("]"):
            continue  # pydantic's union branch names
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_blinding(
    source: str | Path | dict[str, Any] | BlindingConfig | None,
    token_config: TokenConfig | None = None,
) -> BlindingConfig | None:
    """Read a blinding config: a YAML file (top level or a ``blinding:`` section) or dict.

    None, or a build config without ``blinding:``, gives None. Problems raise
    :class:`BlindingError` naming the file and the key; with ``token_config`` the
    object types and functions are checked too.
    """
    if source is None or isinstance(source, BlindingConfig):
        config, where = source, "blinding"
    else:
        where = str(source) if isinstance(source, str | Path) else "blinding"
        if isinstance(source, str | Path):
            data = read_config_file(source, what="blinding config")
        else:
            data = source
        if isinstance(data, dict) and {"blinding", "tokens", "augment"} & set(data):
            data = data.get("blinding")  # a build config: its blinding section
        if data is None:
            return None
        try:
            config = BlindingConfig.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            raise BlindingError(where, _error_key(first["loc"]), first["msg"]) from err
    if config is not None and token_config is not None:
        config.check(token_config, where)
    return config


def as_read_config(token_config: TokenConfig) -> TokenConfig:
    """The token config's collections as read: no pT, |eta| or ID cut, no truncation."""
    collections = [
        c.model_copy(
            update={
                "min_pt": 0.0,
                "max_abs_eta": None,
                "cuts": [],
                "max_count": c.max_count if c.kind == "met" else 512,
            }
        )
        for c in token_config.collections
    ]
    return token_config.model_copy(
        update={"collections": collections, "max_tokens": None, "order": "collection"}
    )


def as_read_objects(events: Any, token_config: TokenConfig) -> EventObjects:
    """Every object of the token config's collections in ``events`` (finite kinematics),
    padded to the chunk's most objects: what ``on: collections`` regions see."""
    ragged = select_ragged(events, as_read_config(token_config))
    counts = np.diff(ragged.offsets)
    return ragged.padded(max(int(counts.max(initial=0)), 1))


def region_masks(
    config: BlindingConfig,
    objects: EventObjects,
    token_config: TokenConfig,
    as_read: EventObjects | None = None,
) -> dict[str, np.ndarray]:
    """Per region, the boolean ``[N]`` mask of the events inside it.

    ``objects``: the token objects (``on: tokens`` regions), ``as_read``: the
    collections as read (:func:`as_read_objects`; ``on: collections`` regions, the
    default -- needed when some region reads them).
    """
    type_ids = {c.name: c.type_id for c in token_config.collections}
    if as_read is None and config.reads_collections:
        names = [r.name for r in config.regions if r.on == "collections"]
        raise ConfigError(
            f"blinding regions {names} are evaluated on the collections as read: pass "
            "as_read_objects(events, token_config)"
        )
    return {
        r.name: r.evaluate(objects if r.on == "tokens" else as_read, type_ids)  # type: ignore[arg-type]
        for r in config.regions
    }
