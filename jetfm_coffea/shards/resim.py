"""Serve re-simulated siblings (RS3L) from a shard store: one batch row per hard event.

A store built from ``jetfm generate --resim K`` samples holds, per event,
``resim_group`` (the hard event; equal for the K siblings) and ``resim_copy``
(:data:`~jetfm_coffea.shards.format.RESIM_ARRAYS`).  :class:`ResimShardDataset` makes
the *group* the unit of the epoch: groups are block-shuffled, split across ranks and
workers and resumed exactly like the events of :class:`~.loader.ShardDataset` (it is
one, with groups in place of events), so the siblings of a group are always in the
same batch row of the same rank.  A row holds:

* ``tokens``/``mask``/``objects``/ids/``label``/``weight``: the group's first copy;
* ``views`` float32 ``[B, K, T, F]``, ``view_mask`` ``[B, K, T]``: the tokens of the K
  copies (copy order; a group that lost copies repeats the ones it has);
* ``view_objects`` float32 ``[B, K, T, 7]`` and ``view_event`` int64 ``[B, K]``
  (``load_objects``): the copies' raw objects and event numbers, from which the training
  loop makes fresh physics views of the siblings (``views: resim+physics``);
* ``resim_group`` int64 ``[B]``.

Groups are identified by (dataset, ``resim_group``); the copies of a group must come
from one input file (the generator writes them so): a store where a group is spread over
files is refused by name (:func:`group_index`).  A group may span two shards of its file
(a chunk boundary); the loader reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetfm_coffea.errors import ShardError
from jetfm_coffea.shards.format import RESIM_ARRAYS
from jetfm_coffea.shards.loader import (
    ShardDataset,
    ShardLoader,
    _Buffer,
    _Segment,
    _widen,
)
from jetfm_coffea.shards.store import ShardStore, open_store

__all__ = ["GroupIndex", "ResimShardDataset", "group_index", "open_resim_loader"]


@dataclass(frozen=True)
class GroupIndex:
    """Where the copies of every group are, groups ordered by their first copy.

    ``shard``/``row`` ``[G, K]``: shard index and row of copy slot ``k`` of group ``g``
    (slots beyond a group's copies repeat its copies); ``n_copies`` ``[G]``;
    ``group`` ``[G]`` the ``resim_group`` ids; ``k`` the most copies of any group.
    """

    shard: np.ndarray
    row: np.ndarray
    n_copies: np.ndarray
    group: np.ndarray

    @property
    def k(self) -> int:
        return int(self.shard.shape[1]) if self.shard.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.group)


def group_index(store: ShardStore) -> GroupIndex:
    """Read the re-simulation ids of every shard of ``store`` into a :class:`GroupIndex`.

    Raises :class:`ShardError` (naming the shard, or the group and its files) when a
    shard has no re-simulation ids or a group's copies come from different files.
    """
    groups, copies, shards, rows, datasets, files = [], [], [], [], [], []
    file_ids: dict[tuple[str, str], int] = {}
    dataset_ids: dict[str, int] = {}
    for i, record in enumerate(store.records):
        shard = store.shard(record.path, full_check=False)
        missing = [name for name in RESIM_ARRAYS if not shard.has(name)]
        if missing:
            raise ShardError(
                record.path,
                f"has no {' / '.join(missing)}: views 'resim' need a store built from "
                "'jetfm generate --resim K' samples",
            )
        n = record.n_events
        groups.append(shard.read("resim_group", 0, n).astype(np.int64))
        copies.append(shard.read("resim_copy", 0, n).astype(np.int64))
        shards.append(np.full(n, i, np.int64))
        rows.append(np.arange(n, dtype=np.int64))
        d = dataset_ids.setdefault(record.dataset, len(dataset_ids))
        f = file_ids.setdefault((record.dataset, record.source_uuid), len(file_ids))
        datasets.append(np.full(n, d, np.int64))
        files.append(np.full(n, f, np.int64))
    if not groups:
        empty = np.zeros((0, 0), np.int64)
        return GroupIndex(empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
    group, copy = np.concatenate(groups), np.concatenate(copies)
    shard, row = np.concatenate(shards), np.concatenate(rows)
    dataset, file = np.concatenate(datasets), np.concatenate(files)
    order = np.lexsort((row, shard, copy, group, dataset))
    group, copy, shard, row, dataset, file = (
        a[order] for a in (group, copy, shard, row, dataset, file)
    )
    new = np.ones(len(group), bool)
    new[1:] = (group[1:] != group[:-1]) | (dataset[1:] != dataset[:-1])
    starts = np.flatnonzero(new)
    n_copies = np.diff(np.append(starts, len(group)))
    split = np.flatnonzero(np.minimum.reduceat(file, starts) != np.maximum.reduceat(file, starts))
    if len(split):
        g = int(starts[split[0]])
        names = {v: k for k, v in file_ids.items()}
        members = np.unique(file[g : g + n_copies[split[0]]])
        where = ", ".join(f"file uuid {names[int(m)][1]}" for m in members)
        raise ShardError(
            str(store.root),
            f"re-simulation group {int(group[g])} of dataset {names[int(members[0])][0]!r} "
            f"is split across files ({where}); {len(split)} group(s) in all: the copies of "
            "a hard event must come from one generated file",
        )
    k = int(n_copies.max())
    slot = np.arange(k)[None, :] % n_copies[:, None]  # missing copies repeat the others
    pos = starts[:, None] + slot
    first = np.lexsort((row[starts], shard[starts]))  # groups in order of their first copy
    return GroupIndex(shard[pos][first], row[pos][first], n_copies[first], group[starts][first])


class _ResimBuffer:
    """The groups of a few reads: their copies' rows in one :class:`_Buffer`."""

    def __init__(self, rows: _Buffer, slots: np.ndarray, group: np.ndarray, keep_objects: bool):
        self.rows = rows
        self.slots = slots  # [G, K] buffer rows of the copies
        self.group = group
        self.keep_objects = keep_objects

    def __len__(self) -> int:
        return len(self.slots)

    def batch(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Batch of groups ``index``: the first copy as the event, the K copies as views."""
        g, k = len(index), self.slots.shape[1]
        out = self.rows.batch(self.slots[index, 0])
        sib = self.rows.batch(self.slots[index].reshape(-1))
        width = max(out["mask"].shape[1], sib["mask"].shape[1])
        for key in ("tokens", "mask", "objects"):
            if key in out:
                out[key] = _widen(out[key], 1, width)
        out["views"] = _widen(sib["tokens"], 1, width).reshape(g, k, width, -1)
        out["view_mask"] = _widen(sib["mask"], 1, width).reshape(g, k, width)
        if self.keep_objects:
            out["view_objects"] = _widen(sib["objects"], 1, width).reshape(g, k, width, -1)
            out["view_event"] = sib["event"].reshape(g, k)
        out["resim_group"] = self.group[index]
        return out


class ResimShardDataset(ShardDataset):
    """A :class:`~.loader.ShardDataset` whose units are re-simulation groups (module
    docstring); same parameters (``load_views`` is ignored: the views are the siblings)."""

    def __init__(self, store: str | Path | ShardStore, batch_size: int = 1024, **kwargs):
        kwargs["load_views"] = False
        super().__init__(store, batch_size, **kwargs)
        self.index = group_index(self.store)
        first_shard = self.index.shard[:, 0] if len(self.index) else np.zeros(0, np.int64)
        # groups per shard of their first copy: the "events" of the base class's plan
        self.sizes = np.bincount(first_shard, minlength=len(self.paths)).astype(np.int64)
        self._first = np.concatenate([[0], np.cumsum(self.sizes)])
        if self.block_events > 0 and self.index.k:
            self.block_events = max(1, self.block_events // self.index.k)

    @property
    def copies(self) -> int:
        """Views per batch row: the most copies of any group (K)."""
        return self.index.k

    def _read_buffer(self, segments: list[_Segment]) -> _ResimBuffer:  # type: ignore[override]
        picked = np.concatenate(
            [
                np.arange(self._first[s.shard] + s.start, self._first[s.shard] + s.stop)
                for s in segments
            ]
        )
        shard, row = self.index.shard[picked], self.index.row[picked]
        reads = []
        for i in np.unique(shard):
            rows_i = row[shard == i]
            reads.append(_Segment(int(i), int(rows_i.min()), int(rows_i.max()) + 1))
        data = super()._read_buffer(reads)
        # buffer row of (shard, row): the read's position in the buffer minus its first row
        offset = np.zeros(len(self.paths), np.int64)
        for seg, pos in zip(reads, _starts(reads), strict=True):
            offset[seg.shard] = pos - seg.start
        return _ResimBuffer(data, row + offset[shard], self.index.group[picked], self.load_objects)


def _starts(segments: list[_Segment]) -> list[int]:
    out, pos = [], 0
    for seg in segments:
        out.append(pos)
        pos += seg.size
    return out


def open_resim_loader(
    store: str | Path | ShardStore,
    batch_size: int = 1024,
    *,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    prefetch_factor: int | None = None,
    **kwargs,
) -> ShardLoader:
    """Open ``store`` and return a resumable :class:`~.loader.ShardLoader` over its
    re-simulation groups (:class:`ResimShardDataset`; keyword arguments as
    :func:`~.loader.open_loader`)."""
    store = store if isinstance(store, ShardStore) else open_store(store)
    dataset = ResimShardDataset(store, batch_size, **kwargs)
    return ShardLoader(
        dataset, num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=prefetch_factor
    )
