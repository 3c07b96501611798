"""Name -> implementation registry of augmentations (in the style of pyhf's modifiers).

An implementation is a function ``impl(spec, ctx, state) -> state`` where

* ``spec`` is the validated pydantic step (:mod:`jetfm_coffea.augment.config`),
* ``ctx`` a :class:`StepContext` (array library, layout, MET objects, token config and
  the step's counter-based random numbers, moved to the backend),
* ``state`` a dict of object arrays (``pt, eta, phi, mass, charge, btag, type_id`` and
  the bool ``mask``) on the backend of the batch, padded ``[N, T]`` or flat ``[M]``,
  never modified in place (keys starting with ``_`` belong to the layout).

An augmentation declares its parameters as a pydantic model, a subclass of
:class:`AugmentationStep` (the ``steps:`` entries of a pipeline are validated against
the model registered under their ``name``), and registers with the decorator::

    class ScaleEnergy(AugmentationStep):
        name: Literal["scale_energy"] = "scale_energy"
        factor: float = Field(1.01, gt=0.5, lt=2.0)

    @register("scale_energy", params=ScaleEnergy)
    def _scale(spec, ctx, state):
        f = where(ctx.lib, ctx.is_met, 1.0, spec.factor)
        return {**state, "pt": state["pt"] * f, "mass": state["mass"] * f}

An augmentation may also register a *Cartesian* implementation (``register(name,
cartesian=True)``) that acts on a state holding ``px, py, pz, e`` (and ``mass``) instead
of ``pt, eta, phi``. The pipeline runs consecutive Cartesian steps on one Cartesian
state (one conversion in, one out: the Lorentz steps fuse), and keeps the polar
implementation as the reference, run by ``apply_pipeline(..., fused=False)``.
Implementations that only touch ``mask`` (drop, mask) are registered for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from jetfm_coffea.augment.rng import StepRandom
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.registry import Registry
from jetfm_coffea.tokens.config import TokenConfig

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "AugmentationStep",
    "Implementation",
    "StepContext",
    "register",
]

State = dict[str, Any]
Implementation = Callable[[Any, "StepContext", State], State]


class AugmentationStep(BaseModel):
    """Parameters common to every augmentation step; an augmentation's model subclasses it."""

    model_config = ConfigDict(extra="forbid")

    apply_probability: float = Field(
        1.0, ge=0.0, le=1.0, description="fraction of events (drawn per event) the step acts on"
    )
    name: str = Field(description="the registered augmentation")


@dataclass
class Augmentation:
    """One registered augmentation: its parameter model and its implementations."""

    name: str
    params: type[AugmentationStep] | None = None  # a pipeline accepts the name once set
    polar: Implementation | None = None  # the reference implementation
    cartesian: Implementation | None = None  # on ``px, py, pz, e`` (fused Lorentz steps)

    @property
    def implementation(self) -> Implementation:
        """The polar implementation (ConfigError if only a Cartesian one is registered)."""
        if self.polar is None:
            raise ConfigError(f"augmentation {self.name!r} has no polar implementation")
        return self.polar


#: Every registered augmentation by name; the parameter models are the pipeline's schema.
AUGMENTATIONS: Registry[Augmentation] = Registry(
    "augmentation", hint="add one with jetfm_coffea.augment.register(name, params=...)"
)


@dataclass(frozen=True)
class StepContext:
    """What an implementation needs besides its parameters: backend, layout, draws.

    Two layouts share the implementations: *padded* arrays ``[N, T]`` (torch, GPU) and
    *flat* arrays ``[M]`` of the valid objects only (numpy, coffea side), given by their
    ``event_index`` and ``slot``. Per-object random numbers depend on (event, slot), so
    both layouts draw identical numbers for the same object. Implementations only use
    the methods below to broadcast, reduce and draw, never the layout directly.
    """

    lib: ModuleType
    is_met: Any  # bool, like the kinematics: objects that are a MET token
    token_config: TokenConfig
    like: Any  # a float array of the backend whose dtype/device draws are cast to
    rand: StepRandom
    event_index: np.ndarray | None = None  # flat layout: event of each object
    slot: np.ndarray | None = None  # flat layout: padded slot of each object
    hit: Any = None  # bool, like the kinematics: where the step applies (None: everywhere)

    @property
    def flat(self) -> bool:
        return self.event_index is not None

    def asarray(self, values: np.ndarray) -> Any:
        """Move numpy draws (float64) to the backend, in the dtype/device of the batch."""
        if self.lib is np:
            return values.astype(self.like.dtype, copy=False)
        return self.lib.as_tensor(values, dtype=self.like.dtype, device=self.like.device)

    def to_objects(self, per_event: Any) -> Any:
        """Broadcast a per-event ``[N]`` array over the objects (``[N, 1]`` or ``[M]``)."""
        if self.flat:
            return per_event.take(self.event_index)
        return per_event[:, None]

    def per_event(self, values: np.ndarray) -> Any:
        """Per-event numpy parameters ``[N]`` -> broadcast over objects, on the backend."""
        return self.asarray(self.to_objects(values))

    def uniform(self, stream: int, per_object: bool = False) -> Any:
        """Uniform (0, 1) draws per event (broadcast over objects) or per object."""
        if not per_object:
            return self.asarray(self.to_objects(self.rand.uniform(stream)))
        if self.flat:
            return self.asarray(self.rand.uniform_at(stream, self.event_index, self.slot))
        return self.asarray(self.rand.uniform(stream, per_object=True))

    def normal(self, stream: int, per_object: bool = False) -> Any:
        """Standard-normal draws per event (broadcast over objects) or per object."""
        if not per_object:
            return self.asarray(self.to_objects(self.rand.normal(stream)))
        if self.flat:
            return self.asarray(self.rand.normal_at(stream, self.event_index, self.slot))
        return self.asarray(self.rand.normal(stream, per_object=True))

    def per_event_at(self, table: np.ndarray, column: Any) -> Any:
        """``table[event, column]`` per object: ``table`` holds per-event numpy values
        ``[N, K]``, ``column`` is an integer array like the kinematics, in ``[0, K)``."""
        if self.flat:
            flat_index = self.event_index * table.shape[1] + column
            return self.asarray(table.reshape(-1).take(flat_index))
        if self.lib is np:
            return self.asarray(np.take_along_axis(table, column, axis=1))
        return self.asarray(table).gather(1, column)

    def lookup(self, values: np.ndarray, index: Any) -> Any:
        """``values[index]`` on the backend: a small numpy table indexed per object
        (float tables take the batch's dtype, integer tables stay integers)."""
        floating = np.issubdtype(values.dtype, np.floating)
        if self.lib is np:
            return (self.asarray(values) if floating else values).take(index)
        if floating:
            return self.asarray(values)[index]
        return self.lib.as_tensor(values, device=self.like.device)[index]

    def integers(self, values: Any) -> Any:
        """A float array of small whole numbers (type ids) as int64 on its backend."""
        if self.lib is np:
            return values.astype(np.int64)
        return values.long()

    def event_sum(self, values: Any) -> Any:
        """Per-event sum ``[N]`` of a per-object array."""
        if self.flat:
            n = len(self.rand.keys)
            return np.bincount(self.event_index, weights=values, minlength=n)
        return values.sum(-1)

    def event_max(self, values: Any) -> Any:
        """Per-event maximum ``[N]`` of a per-object array (-inf for empty events)."""
        if self.flat:
            out = np.full(len(self.rand.keys), -np.inf)
            np.maximum.at(out, self.event_index, values)
            return out
        return self.lib.amax(values, -1)

    def compact(self, state: State, keep: Any) -> State:
        """Move kept objects to the front of their event (order preserved), mask = keep.

        Padded: a stable sort of each row. Flat: a stable sort by (event, not kept),
        which keeps every event's objects contiguous, and new slots = position in event.
        """
        lib = self.lib
        if self.flat:  # removed objects leave the flat arrays (they are invalid for good)
            kept = np.flatnonzero(keep)
            out = {k: v.take(kept) for k, v in state.items()}
            ev = out["_event"]
            counts = np.bincount(ev, minlength=len(self.rand.keys))
            starts = np.cumsum(counts) - counts
            out["_slot"] = np.arange(len(kept)) - starts.take(ev)
            out["mask"] = np.ones(len(kept), bool)
            return out
        if lib is np:
            order = np.argsort(~keep, axis=-1, kind="stable")
            take = lambda x: np.take_along_axis(x, order, axis=-1)  # noqa: E731
        else:
            order = lib.argsort((~keep).to(lib.uint8), dim=-1, stable=True)
            take = lambda x: lib.gather(x, -1, order)  # noqa: E731
        out = {k: take(v) for k, v in state.items()}
        out["mask"] = take(keep)
        return out

    def type_id(self, collection: str) -> int | None:
        """type_id of a token-config collection; None for a standard NanoAOD collection
        the config does not use; ConfigError for any other (misspelt) name."""
        for spec in self.token_config.collections:
            if spec.name == collection:
                return spec.type_id
        if collection in _STANDARD:
            return None
        names = [c.name for c in self.token_config.collections]
        raise ConfigError(
            f"collection {collection!r} is neither in the token config ({names}) "
            f"nor a standard collection ({sorted(_STANDARD)})"
        )


_STANDARD = frozenset(c.name for c in TokenConfig().collections)


def register(
    name: str,
    *,
    params: type[AugmentationStep] | None = None,
    cartesian: bool = False,
    polar: bool = True,
) -> Callable[[Implementation], Implementation]:
    """Decorator registering ``impl`` under ``name`` (re-registering replaces it).

    ``params``: the pydantic model of the step's parameters (a subclass of
    :class:`AugmentationStep`); a pipeline accepts ``name`` once it has one.
    ``cartesian=True`` registers it as the Cartesian implementation (``px, py, pz, e``
    state); ``polar=False`` does not also register it as the polar one.
    """
    if params is not None:
        _check_params(name, params)

    def deco(impl: Implementation) -> Implementation:
        entry = AUGMENTATIONS.get(name) or AUGMENTATIONS.register(name, Augmentation(name))
        if params is not None:
            entry.params = params
        if polar:
            entry.polar = impl
        if cartesian:
            entry.cartesian = impl
        return impl

    return deco


def _check_params(name: str, params: Any) -> None:
    if not (isinstance(params, type) and issubclass(params, AugmentationStep)):
        raise ConfigError(f"augmentation {name!r}: params must subclass AugmentationStep")
    default = params.model_fields["name"].default
    if default not in (PydanticUndefined, name):
        raise ConfigError(f"augmentation {name!r}: its params model is named {default!r}")
