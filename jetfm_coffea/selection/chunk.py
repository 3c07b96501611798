"""What happened to the events of one shard: certified luminosity, then blinding.

:func:`blind` removes the events inside blinded signal regions from a token batch, and
:func:`selection_record` writes the shard's ``selection`` provenance: the dataset kind,
the golden JSON (name, sha256), events and luminosity sections kept and dropped, the
blinding hash with the events removed per region. The same two calls run in virtual
and dask mode, so both give identical shards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.selection.blinding import BlindingConfig, region_masks
from jetfm_coffea.selection.lumi import LumiPolicy
from jetfm_coffea.tokens import EventObjects, RaggedObjects, TokenConfig

__all__ = ["blind", "check_resumed_selection", "selection_record", "selection_signature"]


def blind(
    objects: EventObjects | RaggedObjects,
    weight: np.ndarray | None,
    blinding: BlindingConfig | None,
    policy: LumiPolicy,
    token_config: TokenConfig,
    as_read: EventObjects | None = None,
    masks: dict[str, np.ndarray] | None = None,
) -> tuple[EventObjects | RaggedObjects, np.ndarray | None, dict[str, Any] | None]:
    """Drop the events inside any blinded region: ``(objects, weight, blinding record)``.

    ``as_read``: the chunk's collections as read
    (:func:`~jetfm_coffea.selection.blinding.as_read_objects`), which the regions are
    evaluated on by default; ``masks``: the regions' masks computed already (dask
    mode computes them where the events are). The record (None when nothing is
    blinded for this dataset's kind) holds the config hash and, per region, the events
    inside it (an event in two regions is counted in both, and removed once).
    """
    if blinding is None or not blinding.applies_to(policy.kind):
        return objects, weight, None
    if masks is None:
        padded = objects
        if isinstance(objects, RaggedObjects):
            padded = objects.padded(token_config.n_tokens)
        masks = region_masks(blinding, padded, token_config, as_read)
    inside = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(len(objects), bool)
    keep = ~inside
    record = {
        "hash": blinding.hash(),
        "config": blinding.summary(),
        "regions": {name: int(m.sum()) for name, m in masks.items()},
        "events_removed": int(inside.sum()),
    }
    return objects.take(keep), None if weight is None else weight[keep], record


def selection_record(
    policy: LumiPolicy,
    events_read: int,
    certified: dict[str, Any] | None,
    blinded: dict[str, Any] | None,
    record_ids: list[int] | None = None,
) -> dict[str, Any]:
    """The ``selection`` provenance of a shard (see the module docstring).

    ``record_ids``: the CMS Open Data records of the dataset (catalogue filesets).
    """
    removed = (certified or {}).get("events_dropped", 0) + (blinded or {}).get("events_removed", 0)
    return {
        **policy.provenance(),
        "record_ids": None if record_ids is None else [int(r) for r in record_ids],
        "events_read": int(events_read),
        "events_removed": int(removed),
        "certified": certified,
        "blinding": blinded,
    }


def selection_signature(policy: LumiPolicy, blinding: BlindingConfig | None) -> dict[str, Any]:
    """What decides which events of a chunk are kept: mask sha256, opt-out, blinding hash."""
    mask = policy.provenance()["lumi_mask"]
    blinded = blinding is not None and blinding.applies_to(policy.kind)
    return {
        "lumi_mask_sha256": None if mask is None else mask["sha256"],
        "lumi_mask_disabled": policy.disabled,
        "blinding_hash": blinding.hash() if blinded and blinding is not None else None,
    }


def _recorded_signature(selection: dict[str, Any] | None) -> dict[str, Any]:
    sel = selection or {}
    mask, blinded = sel.get("lumi_mask"), sel.get("blinding")
    return {
        "lumi_mask_sha256": None if mask is None else mask["sha256"],
        "lumi_mask_disabled": bool(sel.get("disabled", False)),
        "blinding_hash": None if blinded is None else blinded["hash"],
    }


def check_resumed_selection(
    shard: str, recorded: dict[str, Any] | None, policy: LumiPolicy, blinding: Any
) -> None:
    """A shard kept on resume must have been selected as this build would select it.

    Raises :class:`ConfigError` naming the shard when its golden JSON, opt-out or
    blinding differ from this build's (a store must not mix selections).
    """
    expected = selection_signature(policy, blinding)
    found = _recorded_signature(recorded)
    if found != expected:
        changed = ", ".join(
            f"{k} {found[k]!r} -> {expected[k]!r}" for k in expected if found[k] != expected[k]
        )
        raise ConfigError(
            f"shard {shard} was built with another event selection ({changed}); "
            "rebuild with --overwrite (or into a new store) so that the store does not "
            "mix selections"
        )
