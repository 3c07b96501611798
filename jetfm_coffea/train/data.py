"""The batch contract of the training loop, an in-memory implementation, and data sources.

A *batch source* is an iterable of dict batches with

* ``tokens`` float32 ``[B, T, F]`` (un-augmented), ``mask`` bool ``[B, T]``; ``T`` may
  change from batch to batch (the shard loader pads to the batch's longest event);
* optionally ``objects`` float32 ``[B, T, 7]`` (pt, eta, phi, mass, charge, btag,
  type_id of the tokens' objects: what fresh views are made of), ``views`` float32
  ``[B, V, T, F]`` and ``view_mask`` bool ``[B, V, T]``,
  ``label`` int64 ``[B]`` (-1 = unlabelled), ``weight`` float32 ``[B]``;
* ``run``, ``luminosityBlock``, ``event`` int64 ``[B]`` (provenance);

and the attributes/methods ``token_config``, ``set_epoch(epoch)``, ``state_dict()``,
``load_state_dict(state)``. Iterating yields the rest of the current epoch from the
saved position (so a restored source continues where it stopped); ``set_epoch`` starts
a fresh, reshuffled epoch. Every rank must yield the same number of batches per epoch.
The Zarr shard loader (``jetfm_coffea.shards.open_loader``) implements the same contract.
The batch keys are declared with the shard format
(:data:`jetfm_coffea.shards.format.BATCH_KEYS`); ``BATCH_KEYS`` and
``check_token_config`` (now in :mod:`jetfm_coffea.tokens.config`) stay importable here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from jetfm_coffea.errors import TokenConfigMismatchError, TrainingError
from jetfm_coffea.fileset import load_fileset, read_input
from jetfm_coffea.model.packing import pack_tokens, packed_width
from jetfm_coffea.selection.chunk import selection_record
from jetfm_coffea.selection.datasheet import entries_data_sheet
from jetfm_coffea.selection.lumi import LumiPolicy, certify_chunk, resolve_lumi_masks
from jetfm_coffea.shards.loader import open_loader
from jetfm_coffea.shards.resim import open_resim_loader
from jetfm_coffea.tokens.build import build_tokens, required_branches
from jetfm_coffea.tokens.config import TokenConfig, load_token_config
from jetfm_coffea.tokens.fields import ID_FIELDS
from jetfm_coffea.train.registry import target_key
from jetfm_coffea.train.views import OBJECT_KEYS

__all__ = [
    "BatchSource",
    "DataSource",
    "TensorEventDataset",
    "batch_provenance",
    "compact_batch",
    "events_source",
    "open_data",
    "read_tokens",
    "shards_source",
]


@runtime_checkable
class BatchSource(Protocol):
    """What the training loop needs from a loader (see the module docstring)."""

    token_config: TokenConfig

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]: ...

    def set_epoch(self, epoch: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TensorEventDataset(IterableDataset):
    """In-memory batch source over token arrays, split by rank (and DataLoader worker).

    Each epoch draws a permutation of all events from ``seed + epoch``; rank ``r`` of
    ``world_size`` takes every ``world_size``-th event of it (disjoint across ranks,
    equal length on all ranks), cut into batches of ``batch_size`` (the last partial
    batch is dropped). The position (epoch, batches yielded) is the state for resume.
    """

    def __init__(
        self,
        tokens: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor,
        *,
        batch_size: int,
        token_config: TokenConfig | None = None,
        run: np.ndarray | None = None,
        luminosityBlock: np.ndarray | None = None,
        event: np.ndarray | None = None,
        label: np.ndarray | None = None,
        weight: np.ndarray | None = None,
        views: np.ndarray | None = None,
        view_mask: np.ndarray | None = None,
        objects: np.ndarray | None = None,
        targets: dict[str, np.ndarray] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        provenance: dict[str, Any] | None = None,
        data_sheet: dict[str, Any] | None = None,
    ):
        super().__init__()
        n = len(tokens)
        self.token_config = load_token_config(token_config)
        self.arrays: dict[str, torch.Tensor] = {
            "tokens": torch.as_tensor(np.asarray(tokens, np.float32)),
            "mask": torch.as_tensor(np.asarray(mask, bool)),
        }
        ids = {"run": run, "luminosityBlock": luminosityBlock, "event": event}
        for name, value in ids.items():
            arr = np.zeros(n, np.int64) if value is None else np.asarray(value, np.int64)
            self.arrays[name] = torch.as_tensor(arr)
        if label is not None:
            self.arrays["label"] = torch.as_tensor(np.asarray(label, np.int64))
        if weight is not None:
            self.arrays["weight"] = torch.as_tensor(np.asarray(weight, np.float32))
        if objects is not None:
            self.arrays["objects"] = torch.as_tensor(np.asarray(objects, np.float32))
        for name, values in (targets or {}).items():  # truth values (NaN: not defined)
            self.arrays[target_key(name)] = torch.as_tensor(np.asarray(values, np.float32))
        if views is not None:
            self.arrays["views"] = torch.as_tensor(np.asarray(views, np.float32))
            vm = view_mask if view_mask is not None else np.repeat(mask[:, None], views.shape[1], 1)
            self.arrays["view_mask"] = torch.as_tensor(np.asarray(vm, bool))
        for name, arr in self.arrays.items():
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} events, tokens has {n}")
        f = self.arrays["tokens"].shape[2]
        if f != len(self.token_config.features):
            raise TokenConfigMismatchError(
                f"tokens have {f} features but the token config lists "
                f"{len(self.token_config.features)}: {self.token_config.feature_names}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.provenance = dict(provenance or {})
        #: what the events are (:mod:`jetfm_coffea.selection.datasheet`), None if unknown
        self.data_sheet = data_sheet
        self.epoch = 0
        self.position = 0  # batches of the current epoch already yielded

    @classmethod
    def from_event_tokens(
        cls, tokens: Any, token_config: TokenConfig | None = None, **kwargs: Any
    ) -> TensorEventDataset:
        """Wrap an :class:`~jetfm_coffea.tokens.EventTokens` (with its objects)."""
        return cls(
            tokens.tokens,
            tokens.mask,
            objects=object_array(tokens.objects),
            token_config=token_config,
            run=tokens.run,
            luminosityBlock=tokens.luminosityBlock,
            event=tokens.event,
            **kwargs,
        )

    @property
    def n_events(self) -> int:
        return len(self.arrays["tokens"])

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return (self.n_events // self.world_size) // self.batch_size

    def shard(self, rank: int, world_size: int) -> TensorEventDataset:
        """This dataset as seen by ``rank`` of ``world_size`` (shares the arrays)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.rank, new.world_size = int(rank), int(world_size)
        new.epoch, new.position = 0, 0
        return new

    def _indices(self, epoch: int) -> torch.Tensor:
        n = self.n_events
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen)
        else:
            perm = torch.arange(n)
        per_rank = n // self.world_size
        return perm[self.rank :: self.world_size][:per_rank]

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch (new permutation)."""
        self.epoch = int(epoch)
        self.position = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "n_events": self.n_events,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n_events"]) != self.n_events or int(state["seed"]) != self.seed:
            raise TrainingError(
                f"loader state is for {state['n_events']} events (seed {state['seed']}); "
                f"this dataset has {self.n_events} events (seed {self.seed})"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        idx = self._indices(self.epoch)
        n_batches = len(self)
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        while self.position < n_batches:
            b = self.position
            self.position += 1
            if b % workers != worker:
                continue
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield {name: arr[sel] for name, arr in self.arrays.items()}


def compact_batch(batch: dict[str, torch.Tensor], multiple: int = 4) -> dict[str, torch.Tensor]:
    """Move valid tokens first and cut the padding common to the whole batch (views and
    objects too), with :mod:`jetfm_coffea.model.packing`.

    The encoder is permutation-invariant and ignores padding, so this changes nothing
    but the cost; the token count is rounded up to ``multiple`` to limit shape churn and
    is the same for the tokens and their views, which the objectives batch together.
    """
    masks = {"tokens": batch["mask"].bool()}
    if "views" in batch:
        masks["views"] = batch["view_mask"].bool()
    n = packed_width(list(masks.values()), batch["mask"].shape[-1], multiple)
    out = dict(batch)
    out["tokens"], out["mask"] = pack_tokens(batch["tokens"], masks["tokens"], n)
    if "objects" in batch:
        out["objects"], _ = pack_tokens(batch["objects"], masks["tokens"], n)
    if "views" in batch:
        out["views"], out["view_mask"] = pack_tokens(batch["views"], masks["views"], n)
    if "view_objects" in batch:  # re-simulated siblings: their objects follow their tokens
        out["view_objects"], _ = pack_tokens(batch["view_objects"], masks["views"], n)
    return out


def batch_provenance(batch: dict[str, torch.Tensor]) -> str:
    """Human-readable run/lumi/event range of a batch, for error messages."""

    def rng(name: str) -> str:
        v = batch.get(name)
        if v is None or v.numel() == 0:
            return "?"
        lo, hi = int(v.min()), int(v.max())
        return str(lo) if lo == hi else f"{lo}-{hi}"

    n = len(batch["tokens"])
    return f"{n} events, run {rng('run')}, lumi {rng('luminosityBlock')}, event {rng('event')}"


class DataSource(Protocol):
    """``(rank, world_size, batch_size, seed) -> BatchSource``."""

    def __call__(self, rank: int, world_size: int, batch_size: int, seed: int) -> Any: ...


def _read_fileset(
    path: Path, lumi_mask: str | Path | None = None, no_lumi_mask: bool = False
) -> list[tuple[str, str, dict[str, Any]]]:
    """Files of a ROOT path or a coffea fileset JSON: ``(file, treename, metadata)``.

    The metadata say how each dataset is masked (``resolve_lumi_masks``: collision data
    without a golden JSON are refused unless ``no_lumi_mask``).
    """
    fileset = resolve_lumi_masks(load_fileset(path), lumi_mask, no_lumi_mask)
    return [
        (str(f), str(t or "Events"), {**spec["metadata"], "dataset": name})
        for name, spec in fileset.items()
        for f, t in spec["files"].items()
    ]


def read_tokens(
    file: str | Path,
    token_config: TokenConfig | None = None,
    *,
    tree: str = "Events",
    max_events: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """:class:`~jetfm_coffea.tokens.EventTokens` of (the first ``max_events`` of) one file.

    ``metadata`` (the dataset's fileset metadata) restricts collision data to their
    certified luminosity sections first, as the processors do
    (:func:`jetfm_coffea.selection.lumi.certify`).
    """
    return read_certified_tokens(
        file, token_config, tree=tree, max_events=max_events, metadata=metadata
    )[0]


def read_certified_tokens(
    file: str | Path,
    token_config: TokenConfig | None = None,
    *,
    tree: str = "Events",
    max_events: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """:func:`read_tokens` and the file's ``selection`` record (what the certified
    luminosity mask kept and dropped, :func:`jetfm_coffea.selection.chunk.selection_record`),
    for the data sheet of a run pretrained on these events."""
    # coffea (and the schema built on it) is imported only when NanoAOD is read
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    meta = dict(metadata or {})
    policy = LumiPolicy.from_metadata({"dataset": str(file), **meta})
    events = NanoEventsFactory.from_root(  # the schema is quiet about slim files
        {str(file): tree}, schemaclass=JetFMNanoAODSchema, mode="virtual", metadata=meta
    ).events()
    n_read = len(events)
    events, lumi = certify_chunk(events, policy)  # certified luminosity sections first
    if max_events is not None:
        events = events[:max_events]
    tokens = build_tokens(events, load_token_config(token_config))
    selection = selection_record(policy, n_read, lumi, None, meta.get("record_ids"))
    return tokens, selection


def events_source(
    path: str | Path,
    token_config: TokenConfig | None = None,
    *,
    max_events: int | None = None,
    lumi_mask: str | Path | None = None,
    no_lumi_mask: bool = False,
) -> TensorEventDataset:
    """Tokens built from NanoAOD (a ROOT file or a fileset JSON) with ``build_tokens``.

    Collision data keep their certified luminosity sections only (fileset
    ``golden_json`` or ``lumi_mask``; ``no_lumi_mask`` opts out). No blinding is
    applied on this path: build shards with ``--blind`` for that.
    Returns a rank-0/world-1 dataset; use :meth:`TensorEventDataset.shard` per rank.
    """
    token_config = load_token_config(token_config)
    path = Path(path)
    if not path.exists():
        raise TrainingError(f"event input {path} does not exist")
    parts, entries = [], []
    files = _read_fileset(path, lumi_mask, no_lumi_mask)
    required = required_branches(token_config)
    for fname, tree, _ in files:  # every file usable, before any is read: else named
        read_input(fname, tree, required, last_entry=True)
    for fname, tree, meta in files:
        left = None if max_events is None else max(0, max_events - sum(len(p) for p in parts))
        tokens, selection = read_certified_tokens(
            fname, token_config, tree=tree, max_events=left, metadata=meta
        )
        parts.append(tokens)
        entries.append(
            {"dataset": meta["dataset"], "n_events": len(tokens), "selection": selection}
        )
        if max_events is not None and sum(len(p) for p in parts) >= max_events:
            break
    cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _ID_AND_TOKENS}
    cat["objects"] = np.concatenate([object_array(p.objects) for p in parts])
    provenance = {
        "source": "nanoaod",
        "files": [f for f, _, _ in files[: len(parts)]],
        "golden_json": sorted({str(m["golden_json"]) for _, _, m in files if "golden_json" in m}),
        "n_events": len(cat["mask"]),
        "runs": sorted({int(r) for r in np.unique(cat["run"])}),
    }
    return TensorEventDataset(
        cat["tokens"],
        cat["mask"],
        token_config=token_config,
        run=cat["run"],
        luminosityBlock=cat["luminosityBlock"],
        event=cat["event"],
        objects=cat["objects"],
        batch_size=2,
        provenance=provenance,
        data_sheet=entries_data_sheet(entries, token_config_hash=token_config.hash()),
    )


_ID_AND_TOKENS = ("tokens", "mask", *ID_FIELDS)


def object_array(objects: Any) -> np.ndarray:
    """Padded ``[N, T, 7]`` float32 objects (the batch key ``objects``, columns
    :data:`~jetfm_coffea.train.views.OBJECT_KEYS`), zero where invalid."""
    cols = [np.where(objects.mask, getattr(objects, k), 0) for k in OBJECT_KEYS]
    return np.stack(cols, -1).astype(np.float32)


def shards_source(store: str | Path, views: str = "fresh", **kwargs: Any) -> Any:
    """A loader over a Zarr shard store (``jetfm_coffea.shards.open_loader``).

    ``views="fresh"`` yields the raw objects (the loop makes the views on its device),
    ``"stored"`` the store's views, ``"resim"`` / ``"resim+physics"`` one row per
    re-simulation group with its siblings as views (and their raw objects for the
    physics views; :func:`jetfm_coffea.shards.resim.open_resim_loader`). Partial batches
    are dropped so that every DDP rank runs the same number of steps.
    """
    if views in ("resim", "resim+physics"):
        return open_resim_loader(
            store, drop_last=True, load_objects=views == "resim+physics", **kwargs
        )
    fresh = views == "fresh"
    return open_loader(store, drop_last=True, load_objects=fresh, load_views=not fresh, **kwargs)


def open_data(
    *,
    shards: str | Path | None = None,
    events: str | Path | None = None,
    token_config: TokenConfig | None = None,
    max_events: int | None = None,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    lumi_mask: str | Path | None = None,
    no_lumi_mask: bool = False,
    views: str = "fresh",
) -> Any:
    """The one place the CLI turns ``--shards``/``--events`` into a batch source.

    ``lumi_mask`` / ``no_lumi_mask`` apply to ``events`` (shards were masked when built).
    ``views``: ``"fresh"`` (the batches carry the raw objects) or ``"stored"``.
    """
    if (shards is None) == (events is None):
        raise TrainingError("give exactly one data source: --shards STORE or --events FILE")
    if shards is not None:
        return shards_source(
            shards, views, batch_size=batch_size, seed=seed, rank=rank, world_size=world_size
        )
    ds = events_source(
        events, token_config, max_events=max_events, lumi_mask=lumi_mask, no_lumi_mask=no_lumi_mask
    )
    ds.batch_size, ds.seed = batch_size, seed
    return ds.shard(rank, world_size)
