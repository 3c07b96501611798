"""Stream a shard store into torch: block-shuffled, split across ranks and workers, resumable.

Shards (schema 2.1.0) hold the physics objects ragged; the loader reads contiguous
blocks of them, computes their token features once per buffer with the one token path
(:func:`jetfm_coffea.tokens.features.compute_features`, the same float64 arithmetic as
:func:`~jetfm_coffea.tokens.build_tokens`, so tokens equal those of score time
bit for bit) and pads every batch only to its longest event (pad-to-need).

Reading random single events from Zarr is about a thousand times slower than reading
contiguous chunks, so the loader shuffles at two levels:

1. each epoch, the blocks (one Zarr chunk of one shard, ``block_events`` events) are
   permuted with a generator seeded by ``(seed, epoch)``;
2. the permuted event sequence is cut into ``world_size * num_workers`` contiguous,
   equal (±1 event) ranges, one per consumer (DDP rank × DataLoader worker); each
   consumer reads its range block by block into a buffer of about ``buffer_events``
   events, shuffles the buffer (seeded by ``(seed, epoch, consumer, buffer)``) and cuts
   batches from the shuffled stream.

Every event is therefore seen exactly once per epoch across all ranks and workers (only
``drop_last=True`` drops the last partial batch of each consumer), the order is a pure
function of ``(seed, epoch)``, and a position (batches consumed per worker) is enough to
resume mid-epoch: :meth:`ShardLoader.state_dict` / :meth:`ShardLoader.load_state_dict`.

Batches are dicts of tensors (the contract shared with pretraining); ``T`` is the most
tokens of any event of the batch (or of its stored views)::

    tokens           float32 [B, T, F]
    mask             bool    [B, T]
    objects          float32 [B, T, 7]      (``load_objects``: pt, eta, phi, mass, charge,
                                             btag, type_id; what fresh views are made of)
    views            float32 [B, V, T, F]   (stored views, ``load_views``)
    view_mask        bool    [B, V, T]
    label            int64   [B]            (-1 where the store has no labels)
    weight           float32 [B]            (1 where the store has no weights)
    run, luminosityBlock, event   int64 [B]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.errors import ShardError
from jetfm_coffea.shards.format import BATCH_KEYS, ID_ARRAYS, OBJECTS, VIEWS
from jetfm_coffea.shards.store import Shard, ShardStore, open_store
from jetfm_coffea.tokens.features import compute_features
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

__all__ = [
    "ShardDataset",
    "ShardLoader",
    "open_loader",
]

_STATE_FORMAT = "jetfm-loader-state"
_DEFAULT_BUFFER_EVENTS = 1 << 16


@dataclass(frozen=True)
class _Segment:
    shard: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def _seed(*parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]))


def _distributed() -> tuple[int, int]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    return 0, 1


def _worker() -> tuple[int, int]:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _torch_iterable_dataset() -> type:
    from torch.utils.data import IterableDataset

    return IterableDataset


def _round_robin(totals: list[int]) -> Iterator[int]:
    """Worker ids in DataLoader delivery order for per-worker batch counts ``totals``."""
    done = [0] * len(totals)
    while any(d < t for d, t in zip(done, totals, strict=True)):
        for w, t in enumerate(totals):
            if done[w] < t:
                done[w] += 1
                yield w


def _pad_index(offsets: np.ndarray, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(source, target)``: flat positions of the objects of ``rows`` and their padded slots.

    ``source`` indexes the flat columns; ``target`` indexes a ``[len(rows) * width]``
    padded array (row ``r`` of the result holds the objects of ``rows[r]`` in slots
    ``0 .. count - 1``).
    """
    starts = offsets[rows]
    counts = offsets[rows + 1] - starts
    first = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum())) - np.repeat(first, counts)
    source = np.repeat(starts, counts) + within
    target = np.repeat(np.arange(len(rows)) * width, counts) + within
    return source, target


class _Buffer:
    """Events of a few contiguous reads with their tokens, computed and padded once.

    The token features of all objects of the buffer are computed in one call of the token
    path; they are then padded once to the buffer's longest event, so that cutting a batch
    is one contiguous gather per array, trimmed to the batch's longest event
    (pad-to-need).
    """

    def __init__(
        self,
        events: dict[str, np.ndarray],
        groups: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
        feature_names: list[str],
        n_views: int,
        keep_objects: bool,
    ):
        self.events = events
        self.n_views = n_views
        # group -> (counts per row, padded tokens, padded mask, padded objects or None)
        self.groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = {}
        for group, (offsets, cols) in groups.items():
            kin = {c: cols[c].astype(np.float64) for c in OBJECT_FIELDS}
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                feats, valid, _ = compute_features(
                    np, feature_names, **kin, mask=np.ones(len(kin["pt"]), bool)
                )
            counts = np.diff(offsets)
            rows = len(counts)
            width = max(1, int(counts.max()) if rows else 1)
            # all rows in order: the flat objects are the source, in their order
            _, target = _pad_index(offsets, np.arange(rows), width)
            if not valid.all():  # tokens with non-finite features are masked and zero
                feats[~valid] = 0.0
            tokens = np.zeros((rows * width, feats.shape[1]), np.float32)
            tokens[target] = feats
            mask = np.zeros(rows * width, bool)
            mask[target] = valid
            objects = None
            if keep_objects and group == OBJECTS:
                flat = np.stack([cols[c] for c in OBJECT_FIELDS], -1).astype(np.float32)
                flat[~valid] = 0.0
                objects = np.zeros((rows * width, len(OBJECT_FIELDS)), np.float32)
                objects[target] = flat
                objects = objects.reshape(rows, width, -1)
            self.groups[group] = (
                counts,
                tokens.reshape(rows, width, -1),
                mask.reshape(rows, width),
                objects,
            )

    def __len__(self) -> int:
        return len(self.events["event"])

    def batch(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Padded numpy batch of events ``index`` (width: the longest event, views included)."""
        rows = {OBJECTS: index}
        if VIEWS in self.groups:
            rows[VIEWS] = (index[:, None] * self.n_views + np.arange(self.n_views)).reshape(-1)
        width = 1
        for group, r in rows.items():
            counts = self.groups[group][0]
            if len(r):
                width = max(width, int(counts[r].max()))
        out = {k: v[index] for k, v in self.events.items()}
        for group, r in rows.items():
            _, tokens, mask, objects = self.groups[group]
            w = min(width, tokens.shape[1])
            tok = _take(tokens, r, w, width)
            msk = _take(mask, r, w, width)
            if group == OBJECTS:
                out["tokens"], out["mask"] = tok, msk
                if objects is not None:
                    out["objects"] = _take(objects, r, w, width)
            else:
                out["views"] = tok.reshape(len(index), self.n_views, width, -1)
                out["view_mask"] = msk.reshape(len(index), self.n_views, width)
        return out


def _take(padded: np.ndarray, rows: np.ndarray, w: int, width: int) -> np.ndarray:
    """Rows of a padded array cut (or zero-padded) to ``width`` slots, contiguous."""
    out = padded[rows]  # whole rows: a contiguous copy per row, the fast gather
    if w < padded.shape[1]:
        out = np.ascontiguousarray(out[:, :w])
    return out if w == width else _widen(out, 1, width)


def _concat_padded(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate two padded batches along events, padding both to the wider one."""
    width = max(a["mask"].shape[1], b["mask"].shape[1])
    out = {}
    for key, x in a.items():
        y = b[key]
        axis = {
            "tokens": 1,
            "mask": 1,
            "objects": 1,
            "views": 2,
            "view_mask": 2,
            "view_objects": 2,
        }.get(key)
        if axis is not None:
            x, y = (_widen(z, axis, width) for z in (x, y))
        out[key] = np.concatenate([x, y])
    return out


def _widen(x: np.ndarray, axis: int, width: int) -> np.ndarray:
    if x.shape[axis] == width:
        return x
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, width - x.shape[axis])
    return np.pad(x, pad)


class ShardDataset(_torch_iterable_dataset()):  # type: ignore[misc]
    """A torch ``IterableDataset`` of batches (dicts of tensors) from a shard store.

    Parameters
    ----------
    store
        Store path or an opened :class:`ShardStore`.
    batch_size
        Events per batch (the dataset batches; use ``DataLoader(batch_size=None)``).
    shuffle, seed
        Block shuffle + buffer shuffle, reshuffled each epoch from ``seed``
        (:meth:`set_epoch`). ``shuffle=False`` streams in store order.
    rank, world_size
        DDP position; default: from ``torch.distributed`` if initialised, else 0 of 1.
    block_events
        Events per contiguous read; default: the shards' Zarr chunk length.
    buffer_events
        Shuffle-buffer size in events (memory: about 1 kB per event for 32 x 8 tokens).
    drop_last
        Drop each consumer's last partial batch (drops events; default False).
    load_views
        Yield the stored views (``views``, ``view_mask``) when the store has them.
    load_objects
        Yield the padded raw objects (``objects`` ``[B, T, 7]``), from which the
        training loop makes fresh views on its device.
    """

    def __init__(
        self,
        store: str | Path | ShardStore,
        batch_size: int = 1024,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        block_events: int | None = None,
        buffer_events: int | None = None,
        drop_last: bool = False,
        load_views: bool = True,
        load_objects: bool = False,
    ):
        super().__init__()
        self.store = store if isinstance(store, ShardStore) else open_store(store)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        if rank is None or world_size is None:
            d_rank, d_world = _distributed()
            rank = d_rank if rank is None else rank
            world_size = d_world if world_size is None else world_size
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.rank, self.world_size = int(rank), int(world_size)
        self.paths = [r.path for r in self.store.records]
        self.sizes = np.array([r.n_events for r in self.store.records], np.int64)
        self.shard_events = self.sizes.copy()  # rows per shard (``sizes``: units of the plan)
        self.labels = [r.label for r in self.store.records]
        if block_events is None:
            block_events = self.store.shard(self.paths[0]).chunk_events if self.paths else 4096
        self.block_events = int(block_events)
        self.buffer_events = int(buffer_events or max(_DEFAULT_BUFFER_EVENTS, self.block_events))
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.load_views = bool(load_views) and self.store.n_views > 0
        self.load_objects = bool(load_objects)
        self.feature_names = self.store.feature_names
        self._resume: dict[int, int] = {}
        self._emit_positions = False
        self._shards: dict[int, Shard] = {}

    # ------------------------------------------------------------------ plan

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its shuffle); forgets a loaded position of another epoch."""
        if int(epoch) != self.epoch:
            self._resume = {}
        self.epoch = int(epoch)

    @property
    def n_events(self) -> int:
        """Events in the store (all ranks)."""
        return int(self.sizes.sum())

    def _blocks(self) -> list[_Segment]:
        out = []
        b = self.block_events
        for i, n in enumerate(self.sizes):
            out.extend(_Segment(i, s, min(s + b, int(n))) for s in range(0, int(n), b))
        return out

    def _consumer_range(self, consumer: int, n_consumers: int) -> tuple[int, int]:
        n = self.n_events
        return consumer * n // n_consumers, (consumer + 1) * n // n_consumers

    def consumer_segments(self, epoch: int, consumer: int, n_consumers: int) -> list[_Segment]:
        """The contiguous reads of one consumer in one epoch (its slice of the block order)."""
        blocks = self._blocks()
        if self.shuffle:
            order = _seed(self.seed, epoch, 0x5EED).permutation(len(blocks))
            blocks = [blocks[i] for i in order]
        lo, hi = self._consumer_range(consumer, n_consumers)
        out, pos = [], 0
        for blk in blocks:
            a, b = pos, pos + blk.size
            pos = b
            if b <= lo:
                continue
            if a >= hi:
                break
            s = blk.start + max(0, lo - a)
            e = blk.stop - max(0, b - hi)
            out.append(_Segment(blk.shard, s, e))
        return out

    def _buffers(self, segments: list[_Segment]) -> list[list[_Segment]]:
        buffers, current, size = [], [], 0
        for seg in segments:
            current.append(seg)
            size += seg.size
            if size >= self.buffer_events:
                buffers.append(current)
                current, size = [], 0
        if current:
            buffers.append(current)
        return buffers

    def events_per_consumer(self, n_workers: int = 1) -> list[int]:
        """Events each (rank, worker) consumer of this rank gets per epoch."""
        n_consumers = self.world_size * n_workers
        out = []
        for w in range(n_workers):
            lo, hi = self._consumer_range(self.rank * n_workers + w, n_consumers)
            out.append(hi - lo)
        return out

    def num_batches(self, n_workers: int = 1) -> int:
        """Batches this rank yields per epoch with ``n_workers`` DataLoader workers."""
        f = math.floor if self.drop_last else math.ceil
        return int(sum(f(n / self.batch_size) for n in self.events_per_consumer(n_workers)))

    # ------------------------------------------------------------------ read

    def _shard(self, index: int) -> Shard:
        shard = self._shards.get(index)
        if shard is None:
            shard = self.store.shard(self.paths[index], full_check=False)
            if shard.n_events != int(self.shard_events[index]):
                raise ShardError(
                    shard.path,
                    f"has {shard.n_events} events, the manifest says "
                    f"{int(self.shard_events[index])}",
                )
            shard.offsets(OBJECTS)  # a corrupted ragged layout is refused here, by name
            if self.load_views:
                shard.offsets(VIEWS)
            self._shards[index] = shard
        return shard

    def _read_buffer(self, segments: list[_Segment]) -> _Buffer:
        """Read segments (contiguous event ranges) into one ragged buffer."""
        events: dict[str, list[np.ndarray]] = {k: [] for k in (*ID_ARRAYS, "label", "weight")}
        groups = [OBJECTS, VIEWS] if self.load_views else [OBJECTS]
        offsets: dict[str, list[np.ndarray]] = {g: [] for g in groups}
        columns: dict[str, dict[str, list[np.ndarray]]] = {g: {} for g in groups}
        base = dict.fromkeys(groups, 0)
        for seg in segments:
            shard = self._shard(seg.shard)
            for name in ID_ARRAYS:
                events[name].append(shard.read(name, seg.start, seg.stop))
            if shard.has("label"):
                events["label"].append(shard.read("label", seg.start, seg.stop))
            else:
                label = self.labels[seg.shard]
                events["label"].append(np.full(seg.size, -1 if label is None else label, np.int64))
            if shard.has("weight"):
                events["weight"].append(shard.read("weight", seg.start, seg.stop))
            else:
                events["weight"].append(np.ones(seg.size, np.float32))
            for group in groups:
                if group == VIEWS and shard.n_views != self.store.n_views:
                    raise ShardError(
                        shard.path, f"has {shard.n_views} views, the store {self.store.n_views}"
                    )
                offs, cols = shard.read_ragged(seg.start, seg.stop, group)
                offsets[group].append(
                    offs[1:] + base[group] if offsets[group] else offs + base[group]
                )
                base[group] += int(offs[-1])
                for name, values in cols.items():
                    columns[group].setdefault(name, []).append(values)
        merged = {
            g: (np.concatenate(offsets[g]), {c: np.concatenate(v) for c, v in columns[g].items()})
            for g in groups
        }
        return _Buffer(
            {k: np.concatenate(v) for k, v in events.items()},
            merged,
            self.feature_names,
            self.store.n_views,
            self.load_objects,
        )

    # ------------------------------------------------------------------ batches

    def _to_batch(self, data: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        return {k: torch.from_numpy(data[k]) for k in BATCH_KEYS if k in data}

    def iter_consumer(
        self, consumer: int, n_consumers: int, skip_batches: int = 0
    ) -> Iterator[dict[str, Any]]:
        """Batches of one consumer, after skipping its first ``skip_batches``.

        The consumer's event stream is the concatenation of its shuffled buffers; batch
        ``i`` is events ``[i*B, (i+1)*B)`` of that stream, so skipping ``k`` batches skips
        whole buffers without reading them.
        """
        epoch, b = self.epoch, self.batch_size
        skip = skip_batches * b
        pending: dict[str, np.ndarray] | None = None
        segments = self.consumer_segments(epoch, consumer, n_consumers)
        for index, buffer in enumerate(self._buffers(segments)):
            size = sum(s.size for s in buffer)
            if skip >= size:
                skip -= size
                continue
            data = self._read_buffer(buffer)
            if self.shuffle:
                order = _seed(self.seed, epoch, consumer, n_consumers, index).permutation(size)
            else:
                order = np.arange(size)
            order = order[skip:]
            skip = 0
            pos = 0
            if pending is not None:
                need = b - len(pending["event"])
                part = data.batch(order[:need])
                pos = len(order[:need])
                pending = _concat_padded(pending, part)
                if len(pending["event"]) < b:
                    continue
                yield self._to_batch(pending)
                pending = None
            while pos + b <= len(order):
                yield self._to_batch(data.batch(order[pos : pos + b]))
                pos += b
            if pos < len(order):
                pending = data.batch(order[pos:])
        if pending is not None and not self.drop_last:
            yield self._to_batch(pending)

    def __iter__(self) -> Iterator[Any]:
        worker, n_workers = _worker()
        consumer = self.rank * n_workers + worker
        n_consumers = self.world_size * n_workers
        done = self._resume.get(worker, 0)
        for batch in self.iter_consumer(consumer, n_consumers, done):
            done += 1
            yield (batch, (worker, done)) if self._emit_positions else batch


class ShardLoader:
    """A DataLoader over a :class:`ShardDataset` that knows its position (resumable).

    Iterate it for the batches of the current epoch; :meth:`set_epoch` before each epoch;
    :meth:`state_dict` at any point and :meth:`load_state_dict` in a new process resume
    exactly after the last batch delivered (batches prefetched by workers but not yet
    delivered are not counted). Pinned memory is used when CUDA is available.
    """

    def __init__(
        self,
        dataset: ShardDataset,
        *,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        prefetch_factor: int | None = None,
        multiprocessing_context: Any = None,
    ):
        import torch

        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.prefetch_factor = prefetch_factor
        self.multiprocessing_context = multiprocessing_context
        self._consumed: dict[int, int] = {}

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    @property
    def token_config(self) -> Any:
        """The token config of the store (the training loop checks it against the model)."""
        return self.dataset.store.token_config

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; a loaded mid-epoch position is kept only for that epoch."""
        if int(epoch) != self.dataset.epoch:
            self._consumed = {}
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self.dataset.num_batches(max(1, self.num_workers))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ds = self.dataset
        ds._resume = dict(self._consumed)
        ds._emit_positions = True
        try:
            for batch, (worker, done) in self._positioned():
                self._consumed[worker] = done
                yield batch
        finally:
            ds._emit_positions = False
        # the epoch is complete: the next iteration starts it from the beginning
        self._consumed = {}
        ds._resume = {}

    def _positioned(self) -> Iterator[Any]:
        """(batch, (worker, batches done)) from the workers, or in-process without any."""
        if self.num_workers == 0:
            # a DataLoader adds nothing in-process but per-batch overhead
            for batch, position in iter(self.dataset):
                if self.pin_memory:
                    batch = {k: v.pin_memory() for k, v in batch.items()}
                yield batch, position
            return
        from collections import deque

        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.dataset,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor or 2,
            multiprocessing_context=self.multiprocessing_context,
        )
        # A DataLoader delivers its workers' batches round-robin, starting with worker 0
        # and skipping exhausted workers. After a resume the workers start part-way, so
        # re-establish the uninterrupted epoch's order from the per-worker batch counts.
        f = math.floor if self.dataset.drop_last else math.ceil
        b = self.dataset.batch_size
        totals = [f(n / b) for n in self.dataset.events_per_consumer(self.num_workers)]
        order = _round_robin(totals)
        for _ in range(sum(self._consumed.values())):
            next(order)
        queues: dict[int, deque] = {w: deque() for w in range(self.num_workers)}
        source = iter(loader)
        for worker in order:
            while not queues[worker]:
                batch, position = next(source)
                queues[position[0]].append((batch, position))
            yield queues[worker].popleft()
        for batch, position in source:  # nothing is expected here; keep every event
            yield batch, position

    def state_dict(self) -> dict[str, Any]:
        """Position in the current epoch (per rank): restore with :meth:`load_state_dict`."""
        return {
            "format": _STATE_FORMAT,
            "version": 1,
            "epoch": self.dataset.epoch,
            **self._layout(),
            "consumed": {str(k): int(v) for k, v in sorted(self._consumed.items())},
        }

    def _layout(self) -> dict[str, Any]:
        """What a saved position depends on: same store, seed, split and batching."""
        ds = self.dataset
        return {
            "seed": ds.seed,
            "shuffle": ds.shuffle,
            "rank": ds.rank,
            "world_size": ds.world_size,
            "num_workers": self.num_workers,
            "batch_size": ds.batch_size,
            "block_events": ds.block_events,
            "buffer_events": ds.buffer_events,
            "n_events": ds.n_events,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at a :meth:`state_dict` position (same store, seed, layout and workers)."""
        ds = self.dataset
        if state.get("format") != _STATE_FORMAT:
            raise ValueError("not a jetfm loader state")
        expect = self._layout()
        diff = {k: (state.get(k), v) for k, v in expect.items() if state.get(k) != v}
        if diff:
            raise ValueError(f"loader state does not match this loader (saved, current): {diff}")
        ds.set_epoch(int(state["epoch"]))
        self._consumed = {int(k): int(v) for k, v in state["consumed"].items()}


def open_loader(
    store: str | Path | ShardStore,
    batch_size: int = 1024,
    *,
    num_workers: int = 0,
    shuffle: bool = True,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    drop_last: bool = False,
    load_views: bool = True,
    load_objects: bool = False,
    block_events: int | None = None,
    buffer_events: int | None = None,
    pin_memory: bool | None = None,
    prefetch_factor: int | None = None,
) -> ShardLoader:
    """Open ``store`` and return a resumable, block-shuffled :class:`ShardLoader`."""
    dataset = ShardDataset(
        store,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        world_size=world_size,
        block_events=block_events,
        buffer_events=buffer_events,
        drop_last=drop_last,
        load_views=load_views,
        load_objects=load_objects,
    )
    return ShardLoader(
        dataset, num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=prefetch_factor
    )
