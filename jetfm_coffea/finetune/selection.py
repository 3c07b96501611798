"""Declarative event selections of a task, evaluated on the event tokens.

A task's ``selection`` is a list of object-count requirements, all of which an event
must pass, e.g. (ttH(bb) vs ttbar)::

    selection:
      - {collections: [Muon, Electron], min_count: 1, min_pt: 25}
      - {collections: [Jet], min_count: 4, min_pt: 30, max_abs_eta: 2.4}

The requirements are evaluated on the tokens themselves (``type_id``, ``log_pt``,
``eta``, ``btag`` features), the representation every mode sees: the encoder modes,
the gradient-boosted references and scoring all select the same events, through this
one function.  A token config that lacks a feature a requirement needs, or a
collection it names, is a :class:`~jetfm_coffea.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens.config import TokenConfig

__all__ = ["ObjectRequirement", "select_events", "selection_summary"]


class ObjectRequirement(BaseModel):
    """At least ``min_count`` (and at most ``max_count``) tokens of ``collections`` passing
    the pT, |η| and b-tag thresholds."""

    model_config = ConfigDict(extra="forbid")

    collections: list[str] = Field(..., description="token collections counted together")
    min_count: int = Field(1, ge=0)
    max_count: int | None = Field(None, ge=0)
    min_pt: float = Field(0.0, ge=0.0, description="GeV")
    max_abs_eta: float | None = Field(None, gt=0.0)
    min_btag: float | None = Field(None, description="b-tag score threshold (e.g. 0.2770)")

    @field_validator("collections", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def describe(self) -> str:
        """Short text, e.g. ``>= 4 Jet (pT > 30, |eta| < 2.4)``."""
        cuts = [f"pT > {self.min_pt:g}"] if self.min_pt else []
        if self.max_abs_eta is not None:
            cuts.append(f"|eta| < {self.max_abs_eta:g}")
        if self.min_btag is not None:
            cuts.append(f"btag > {self.min_btag:g}")
        count = f">= {self.min_count}"
        if self.max_count is not None:
            count = f"{self.min_count}-{self.max_count}"
        where = f" ({', '.join(cuts)})" if cuts else ""
        return f"{count} {'/'.join(self.collections)}{where}"


def _feature(config: TokenConfig, name: str, why: str) -> int:
    names = config.feature_names
    if name not in names:
        raise ConfigError(f"the task selection needs the token feature {name!r} ({why}); "
                          f"the token config has {names}")  # fmt: skip
    return names.index(name)


def _count(
    tokens: np.ndarray, mask: np.ndarray, config: TokenConfig, req: ObjectRequirement
) -> np.ndarray:
    by_name = {c.name: c.type_id for c in config.collections}
    unknown = [c for c in req.collections if c not in by_name]
    if unknown:
        raise ConfigError(
            f"the task selection names collections {unknown} that the token config does not "
            f"have (it has {sorted(by_name)})"
        )
    type_ids = [by_name[c] for c in req.collections]
    tid = tokens[..., _feature(config, "type_id", "to tell collections apart")]
    ok = mask & np.isin(np.rint(tid).astype(np.int64), type_ids)
    if req.min_pt > 0:
        log_pt = tokens[..., _feature(config, "log_pt", "for min_pt")]
        ok &= log_pt > np.log(req.min_pt)
    if req.max_abs_eta is not None:
        ok &= np.abs(tokens[..., _feature(config, "eta", "for max_abs_eta")]) < req.max_abs_eta
    if req.min_btag is not None:
        ok &= tokens[..., _feature(config, "btag", "for min_btag")] > req.min_btag
    return ok.sum(-1)


def select_events(
    tokens: np.ndarray,
    mask: np.ndarray,
    config: TokenConfig,
    selection: Sequence[ObjectRequirement],
    chunk: int = 65_536,
) -> np.ndarray:
    """Boolean mask of the events (``tokens [N, T, F]``) passing every requirement."""
    keep = np.ones(len(tokens), dtype=bool)
    for start in range(0, len(tokens), chunk):
        t, m = tokens[start : start + chunk], mask[start : start + chunk]
        for req in selection:
            n = _count(t, m, config, req)
            passed = n >= req.min_count
            if req.max_count is not None:
                passed &= n <= req.max_count
            keep[start : start + chunk] &= passed
    return keep


def selection_summary(
    selection: Sequence[ObjectRequirement],
    passed: np.ndarray,
    classes: np.ndarray,
    names: list[str],
) -> dict[str, Any]:
    """Requirements and, per class, events before and after the selection."""
    per_class = {}
    for c, name in enumerate(names):
        of_class = classes == c
        per_class[name] = {"before": int(of_class.sum()), "after": int((of_class & passed).sum())}
    return {"requirements": [r.describe() for r in selection], "per_class": per_class}
