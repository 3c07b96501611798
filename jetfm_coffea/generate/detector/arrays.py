"""Flat per-item arrays of a batch of events: offsets, per-event order, jagged records."""

from __future__ import annotations

import awkward as ak
import numpy as np

__all__ = [
    "empty_collection",
    "event_offsets",
    "first_two",
    "jagged",
    "local_index",
    "sort_within_events",
]


def event_offsets(counts: np.ndarray) -> np.ndarray:
    """Offsets ``[n + 1]`` of event-ordered items from the per-event counts."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def sort_within_events(evt: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Permutation ordering items by event, then by ``key`` descending."""
    return np.lexsort((-key, evt))


def local_index(evt: np.ndarray, n_events: int) -> np.ndarray:
    """Index of each (event-ordered) item within its event."""
    counts = np.bincount(evt, minlength=n_events)
    return np.arange(len(evt)) - event_offsets(counts)[evt]


def jagged(evt: np.ndarray, n_events: int, fields: dict[str, np.ndarray]) -> ak.Array:
    """Zip event-ordered flat arrays into a jagged record array."""
    offsets = event_offsets(np.bincount(evt, minlength=n_events))
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in fields.values()],
        list(fields),
        length=len(evt),
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def empty_collection(n_events: int, fields: dict[str, type]) -> ak.Array:
    """A collection that is always empty, with typed fields."""
    return jagged(
        np.zeros(0, dtype=np.int64),
        n_events,
        {k: np.zeros(0, dtype=v) for k, v in fields.items()},
    )


def first_two(owner: np.ndarray, item: np.ndarray, n_owner: int) -> tuple[np.ndarray, np.ndarray]:
    """For owners 0..n_owner-1, the first two ``item`` values (sorted) they own, else -1."""
    idx1 = np.full(n_owner, -1, dtype=np.int32)
    idx2 = np.full(n_owner, -1, dtype=np.int32)
    sel = owner >= 0
    owner, item = owner[sel], item[sel]
    if len(owner) == 0:
        return idx1, idx2
    order = np.lexsort((item, owner))
    owner, item = owner[order], item[order]
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    rank = np.arange(len(owner)) - np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
    idx1[owner[rank == 0]] = item[rank == 0]
    idx2[owner[rank == 1]] = item[rank == 1]
    return idx1, idx2
