"""Stream a shard store into torch: block-shuffled, split across ranks and workers, resumable.

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

Batches are dicts of tensors (the contract shared with pretraining)::

    tokens           float32 [B, T, F]
    mask             bool    [B, T]
    views            float32 [B, V, T, F]   (store with views, or on-the-fly augmentation)
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
from jetfm_coffea.shards.format import OBJECT_FIELDS
from jetfm_coffea.shards.store import Shard, ShardStore, open_store
from jetfm_coffea.shards.views import (
    AugmentationPipelineLike,
    TorchAugmentHook,
    torch_hook,
)

__all__ = [
    "BATCH_KEYS",
    "ShardDataset",
    "ShardLoader",
    "open_loader",
]

#: Keys of every batch (``views``/``view_mask`` only when the store or the hook has views).
from jetfm_coffea.train.data import BATCH_KEYS

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


def _gather(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.take(v, index, axis=0) for k, v in data.items()}


def _slice(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    if len(index) == 0:
        return {k: v[:0] for k, v in data.items()}
    return {k: v[index[0] : index[-1] + 1] for k, v in data.items()}


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
    augment
        On-the-fly augmentation: an augmentation pipeline (applied with the torch kernels)
        or a hook ``hook(objects, view, ids) -> (tokens, mask)``; it replaces the stored
        views by ``augment_views`` fresh views per event (view index ``epoch * V + v``).
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
        augment: TorchAugmentHook | AugmentationPipelineLike | None = None,
        augment_views: int | None = None,
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
        self.labels = [r.label for r in self.store.records]
        if block_events is None:
            block_events = self.store.shard(self.paths[0]).chunk_events if self.paths else 4096
        self.block_events = int(block_events)
        self.buffer_events = int(buffer_events or max(_DEFAULT_BUFFER_EVENTS, self.block_events))
        self.drop_last = bool(drop_last)
        self.epoch = 0
        if augment is not None and not callable(augment):
            augment = torch_hook(augment, self.store.token_config)
        self.augment = augment
        self.augment_views = int(
            augment_views or getattr(augment, "views", 0) or self.store.n_views or 2
        )
        self.load_views = bool(load_views) and self.store.n_views > 0 and augment is None
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
            if shard.n_events != int(self.sizes[index]):
                raise ShardError(
                    shard.path,
                    f"has {shard.n_events} events, the manifest says {int(self.sizes[index])}",
                )
            self._shards[index] = shard
        return shard

    def _array_names(self, shard: Shard) -> list[str]:
        names = ["tokens", "mask", "run", "luminosityBlock", "event"]
        if self.load_views:
            names += ["views", "view_mask"]
        if self.augment is not None:
            names.append("objects")
        names += [n for n in ("label", "weight") if shard.has(n)]
        return names

    def _read_buffer(self, segments: list[_Segment]) -> dict[str, np.ndarray]:
        """Read segments into freshly allocated arrays (chunks decode in place)."""
        total = sum(s.size for s in segments)
        first = self._shard(segments[0].shard)
        names = self._array_names(first)
        out: dict[str, np.ndarray] = {}
        for name in names:
            dtype, shape = first.dtype_shape(name)
            out[name] = np.empty((total, *shape), dtype)
        if "label" not in out:
            out["label"] = np.empty(total, np.int64)
        if "weight" not in out:
            out["weight"] = np.empty(total, np.float32)
        pos = 0
        for seg in segments:
            shard = self._shard(seg.shard)
            end = pos + seg.size
            for name in out:
                if shard.has(name):
                    shard.read_into(name, seg.start, seg.stop, out[name][pos:end])
                elif name == "label":
                    label = self.labels[seg.shard]
                    out[name][pos:end] = -1 if label is None else label
                elif name == "weight":
                    out[name][pos:end] = 1.0
                else:
                    raise ShardError(shard.path, f"has no array {name!r} (other shards do)")
            pos = end
        return out

    # ------------------------------------------------------------------ batches

    def _to_batch(self, data: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}
        objects = batch.pop("objects", None)
        if self.augment is not None and objects is not None:
            kin = {name: objects[..., i] for i, name in enumerate(OBJECT_FIELDS)}
            kin["mask"] = batch["mask"]
            ids = {k: batch[k] for k in ("run", "luminosityBlock", "event")}
            views, masks = [], []
            for v in range(self.augment_views):
                t, m = self.augment(kin, self.epoch * self.augment_views + v, ids)
                views.append(t)
                masks.append(m)
            batch["views"] = torch.stack(views, 1).to(torch.float32)
            batch["view_mask"] = torch.stack(masks, 1).to(torch.bool)
        return {k: batch[k] for k in BATCH_KEYS if k in batch}

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
                take = _gather
            else:
                order = np.arange(size)
                take = _slice
            order = order[skip:]
            skip = 0
            pos = 0
            if pending is not None:
                need = b - len(pending["event"])
                part = take(data, order[:need])
                pos = len(order[:need])
                pending = {k: np.concatenate([pending[k], part[k]]) for k in pending}
                if len(pending["event"]) < b:
                    continue
                yield self._to_batch(pending)
                pending = None
            while pos + b <= len(order):
                yield self._to_batch(take(data, order[pos : pos + b]))
                pos += b
            if pos < len(order):
                pending = take(data, order[pos:])
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
    augment: TorchAugmentHook | AugmentationPipelineLike | None = None,
    augment_views: int | None = None,
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
        augment=augment,
        augment_views=augment_views,
    )
    return ShardLoader(
        dataset, num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=prefetch_factor
    )
