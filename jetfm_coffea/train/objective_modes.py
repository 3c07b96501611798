"""Pretraining modes: ``ssl``, ``supervised`` and ``hybrid`` objective sections (issue 26).

* ``ssl``: the self-supervised terms only (contrastive views + masked objects: today's
  default);
* ``supervised``: the supervised terms only (``process`` classification and ``truth``
  regression on the simulated events' labels and generator targets);
* ``hybrid``: both; collision data and unlabelled events train only the self-supervised
  terms (per-event masks in the supervised terms).

:func:`supervised_sections` derives the supervised sections from a pool's labels and
truth values: the process labels present (minus ``exclude``: a task's signal process is
never among the supervised labels of an encoder that task evaluates), the tt̄
extra-flavour split where the pool has tt̄ and its ``GenTarget_ttHF``, the truth targets
the pool defines with their median and spread, and the model's head sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.train.process_objective import TTHF_TARGET

__all__ = [
    "DEFAULT_TRUTH_TARGETS",
    "OBJECTIVE_MODES",
    "needed_values",
    "objective_mode",
    "supervised_sections",
]

#: The pretraining modes.
OBJECTIVE_MODES: tuple[str, ...] = ("ssl", "supervised", "hybrid")
#: Truth targets regressed by default (``GenTarget_*`` -> weight).
DEFAULT_TRUTH_TARGETS: dict[str, float] = {
    "GenTarget_hadTopPt": 1.0,
    "GenTarget_nuPt": 1.0,
    "GenTarget_bosonPt": 1.0,
    "GenTarget_mbb": 1.0,
    "GenTarget_nHardB": 1.0,
}
_SSL_OFF = {"contrastive": {"loss": "none", "weight": 0.0}, "masked": {"weight": 0.0}}


def supervised_sections(
    label: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    exclude: Iterable[int] = (),
    targets: Mapping[str, float] | None = None,
    process_weight: float = 1.0,
    truth_weight: float = 1.0,
    tt_label: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(objective sections, model overrides)`` of the supervised terms for a pool with
    per-event ``label`` (-1: unlabelled) and truth ``values`` (NaN: undefined).

    ``targets`` None: the :data:`DEFAULT_TRUTH_TARGETS` the pool defines for some event.
    :class:`ConfigError` when the pool has no labelled event, or a requested target is
    absent or defined nowhere (names it and lists the targets the pool has)."""
    label = np.asarray(label)
    excluded = set(int(x) for x in exclude)
    labels = sorted(int(x) for x in np.unique(label[label >= 0]) if int(x) not in excluded)
    if not labels:
        raise ConfigError(
            "the supervised objectives need labelled events (process labels >= 0) and the "
            f"pool has none outside the excluded labels {sorted(excluded)}"
        )
    defined = {n for n, v in values.items() if np.isfinite(v).any()}
    if targets is None:  # the defaults the pool defines somewhere
        want = {n: w for n, w in DEFAULT_TRUTH_TARGETS.items() if n in defined}
    else:
        want = dict(targets)
        missing = [n for n in want if n not in defined]
        if missing:
            raise ConfigError(
                f"truth targets {missing} are absent from the pool's files or defined for "
                f"none of its events (it has {sorted(defined)}); generate the pool with this "
                "version of jetfm generate or drop them"
            )
    keep = np.isin(label, labels)  # statistics over the events this term trains on
    center, scale = {}, {}
    for name in want:
        v = np.asarray(values[name], np.float64)[keep]
        v = v[np.isfinite(v)]
        q25, q50, q75 = np.percentile(v, [25, 50, 75]) if len(v) else (0.0, 0.0, 1.0)
        center[name] = float(q50)
        scale[name] = float(max((q75 - q25) / 1.349, np.std(v) if len(v) else 1.0, 1e-3))
    hf = values.get(TTHF_TARGET)
    tt_flavour = tt_label in labels and hf is not None and np.isfinite(hf[label == tt_label]).any()
    process = {"weight": process_weight, "labels": labels, "tt_flavour": bool(tt_flavour),
               "tt_label": tt_label}  # fmt: skip
    truth = {"weight": truth_weight, "targets": want, "center": center, "scale": scale}
    n_classes = len(labels) + 2 * bool(tt_flavour)
    return {"process": process, "truth": truth}, {"n_classes": max(n_classes, 2),
                                                  "n_truth": len(want)}  # fmt: skip


def objective_mode(mode: str, supervised: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``objective`` config section of pretraining mode ``mode`` (``supervised``: the
    sections of :func:`supervised_sections`, needed by ``supervised`` and ``hybrid``)."""
    if mode not in OBJECTIVE_MODES:
        raise ConfigError(f"unknown pretraining mode {mode!r}; choose from {OBJECTIVE_MODES}")
    if mode == "ssl":
        return {}
    if not supervised:
        raise ConfigError(f"pretraining mode {mode!r} needs the supervised sections")
    sections = {k: dict(v) for k, v in supervised.items()}
    return {**_SSL_OFF, **sections} if mode == "supervised" else sections


def needed_values(sections: Mapping[str, Any]) -> list[str]:
    """The truth values a batch must carry for these objective sections (the ``truth``
    targets, and ``GenTarget_ttHF`` for the tt̄ flavour split)."""
    names = list(sections.get("truth", {}).get("targets", {}))
    if sections.get("process", {}).get("tt_flavour") and TTHF_TARGET not in names:
        names.append(TTHF_TARGET)
    return names
