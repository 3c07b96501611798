"""Pretraining objectives by name: what an objective declares, and the registry.

An objective is a subclass of :class:`Objective` registered under a name with
:func:`register_objective`. It declares

* ``params``: the pydantic model of its config section ``objective.<name>`` (a subclass
  of :class:`ObjectiveParams`, which holds the ``weight`` of its term in the total loss);
* ``heads``: the model heads it trains (names of :data:`jetfm_coffea.model.HEADS`; a new
  head is added with :func:`jetfm_coffea.model.register_head`);
* which encoder inputs it reads: ``uses_views`` (the contrastive views of every event)
  and ``uses_tokens`` (the events' own tokens), and ``hides_tokens`` with :meth:`hide`
  (tokens replaced by the mask token in that copy);
* its loss (:meth:`Objective.loss`, on the encoded batch, :class:`Encoded`) and its
  model-card line (:meth:`Objective.card_line`).

The built-in objectives (``contrastive``, ``masked``, ``supervised``:
:mod:`jetfm_coffea.train.builtin_objectives`) are registered the same way::

    class MultiplicityParams(ObjectiveParams):
        weight: float = 0.0

    @register_objective("multiplicity")
    class Multiplicity(Objective):
        params = MultiplicityParams
        heads = ("multiplicity",)

        def loss(self, enc, params):
            n = enc.batch["mask"].sum(1).float()
            loss = F.mse_loss(enc.heads["multiplicity"](enc.pooled)[:, 0], n.log1p())
            return params.weight * loss, {"multiplicity": loss}

The order of registration is the order in which the terms are summed, and the
order of the heads in the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.model.model import HEADS
from jetfm_coffea.registry import Registry

__all__ = [
    "OBJECTIVES",
    "Encoded",
    "Objective",
    "ObjectiveParams",
    "register_objective",
    "target_key",
]


class ObjectiveParams(BaseModel):
    """Parameters of an objective's config section; ``weight`` 0 switches it off."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0, description="weight of this term in the total loss")


@dataclass
class Encoded:
    """One encoder call over the batch, as the objectives see it.

    ``views`` ``[B, V, D]``: embeddings of the contrastive views (when an active
    objective uses views); ``tokens`` ``[B, T, D]``: per-token outputs of the events'
    own tokens, with ``hide`` ``[B, T]`` the hidden ones (when an active objective uses
    or hides tokens); ``pooled`` ``[B, D]``: view 0 (or the tokens) pooled, also used
    by the collapse monitors.
    """

    batch: dict[str, torch.Tensor]
    model: nn.Module
    pooled: torch.Tensor
    views: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    hide: torch.Tensor | None = None

    @property
    def heads(self) -> nn.ModuleDict:
        return self.model.heads


class Objective:
    """A pretraining objective (subclass and register with :func:`register_objective`)."""

    #: Set by :func:`register_objective`: the objective's name and config section.
    name: ClassVar[str] = ""
    params: ClassVar[type[ObjectiveParams]] = ObjectiveParams
    heads: ClassVar[tuple[str, ...]] = ()
    uses_views: ClassVar[bool] = False
    uses_tokens: ClassVar[bool] = False
    hides_tokens: ClassVar[bool] = False

    def active(self, params: Any) -> bool:
        """Whether the objective contributes to the loss (by default: ``weight > 0``)."""
        return params.weight > 0

    def n_views(self, params: Any) -> int:
        """Views per event the objective needs (objectives that use views override it)."""
        return 0

    def hide(self, mask: torch.Tensor, params: Any, generator: torch.Generator) -> torch.Tensor:
        """``[B, T]`` bool: tokens to hide (objectives with ``hides_tokens``)."""
        raise NotImplementedError(f"objective {self.name!r} hides no tokens")

    def loss(self, encoded: Encoded, params: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(its weighted term of the total loss, {metric name: loss value})``."""
        raise NotImplementedError

    def card_line(self, params: Any) -> str:
        """The model card's line for this objective."""
        return f"{self.name} (weight {params.weight})"


#: The registered objectives by name (their config sections), in registration order: the
#: order their terms are summed in.
OBJECTIVES: Registry[Objective] = Registry(
    "pretraining objective",
    hint="add one with jetfm_coffea.train.register_objective",
    same=lambda old, new: type(old).__qualname__ == type(new).__qualname__,
)

ObjectiveClass = TypeVar("ObjectiveClass", bound=type[Objective])


def register_objective(name: str) -> Callable[[ObjectiveClass], ObjectiveClass]:
    """Class decorator registering an :class:`Objective` under ``name`` (its config section).

    Registering a name twice raises :class:`~jetfm_coffea.errors.ConfigError` (unless it
    is the same class again); the heads must be known to the model.
    """

    def deco(cls: ObjectiveClass) -> ObjectiveClass:
        if name == "sections" or not name.isidentifier():
            raise ConfigError(f"objective name {name!r}: use another identifier")
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise ConfigError(f"objective {name!r}: {cls!r} is not an Objective subclass")
        if not (isinstance(cls.params, type) and issubclass(cls.params, ObjectiveParams)):
            raise ConfigError(f"objective {name!r}: params must subclass ObjectiveParams")
        unknown = [h for h in cls.heads if h not in HEADS]
        if unknown:
            raise ConfigError(
                f"objective {name!r} needs heads {unknown} the model does not know "
                f"({sorted(HEADS)}): add them with jetfm_coffea.model.register_head"
            )
        if name in OBJECTIVES and type(OBJECTIVES[name]).__qualname__ != cls.__qualname__:
            raise ConfigError(f"a pretraining objective named {name!r} is already registered")
        cls.name = name
        OBJECTIVES.register(name, cls())
        return cls

    return deco


def target_key(name: str) -> str:
    """The batch key of the per-event truth values ``name`` (``GenTarget_*``; NaN where
    undefined) that supervised objectives read."""
    return f"target:{name}"
