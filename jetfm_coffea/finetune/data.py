"""Labelled events for downstream tasks: sources, deterministic splits, label subsets.

Fine-tuning sets are small enough to hold in memory, so every source is read once
into :class:`LabelledEvents` (numpy arrays, one row per event); splits and label-count
subsets are index arrays into it.

* :func:`load_labelled` reads a labelled coffea fileset (``metadata.label`` per dataset;
  tokens built with ``build_tokens``) or a Zarr shard store (via the shard loader,
  which yields ``label`` and ``weight`` in the batch contract).
* :func:`split_assignment` puts every event into train/val/test by a hash of its
  dataset name together with ``(run, luminosityBlock, event)``: deterministic, no event
  leaks across splits, and datasets are split independently (simulated samples reuse
  the same ids, ``run = 1`` everywhere: without the name, event k of every sample
  would land in the same split).  :func:`assign_splits` applies it to
  :class:`LabelledEvents` (the one place trainer and evaluation split).
* :func:`sample_labels` draws a class-stratified subset of a given size.

Regression targets ride along as per-event ``values`` (branch name -> float array, NaN
where a file lacks the branch): a fileset read picks up every ``GenTarget_*`` branch
(:mod:`jetfm_coffea.generate.targets`) plus any ``value_branches`` asked for, matched to
the tokens by event id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from jetfm_coffea.augment.rng import mix64
from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.fileset import load_fileset
from jetfm_coffea.finetune.config import SplitConfig, TaskConfig, check_class_processes
from jetfm_coffea.finetune.selection import select_events, selection_summary
from jetfm_coffea.finetune.task_types import task_type_for
from jetfm_coffea.generate.targets import TARGET_PREFIX
from jetfm_coffea.shards.loader import open_loader
from jetfm_coffea.tokens.config import TokenConfig, load_token_config
from jetfm_coffea.tokens.fields import ID_FIELDS
from jetfm_coffea.train.data import object_array, read_tokens

__all__ = [
    "SPLITS",
    "LabelledEvents",
    "assign_splits",
    "balanced_batch_size",
    "bootstrap_labels",
    "dataset_keys",
    "event_hash",
    "load_labelled",
    "read_labelled_fileset",
    "read_values",
    "sample_labels",
    "split_assignment",
    "task_targets",
    "task_values",
]

#: Split codes of :func:`split_assignment`.
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class LabelledEvents:
    """Tokens of labelled events with their ids, data labels and weights (numpy)."""

    tokens: np.ndarray  # float32 [N, T, F]
    mask: np.ndarray  # bool [N, T]
    label: np.ndarray  # int64 [N], data label (-1 = unlabelled)
    weight: np.ndarray  # float32 [N]
    run: np.ndarray  # int64 [N]
    luminosityBlock: np.ndarray  # int64 [N]
    event: np.ndarray  # int64 [N]
    token_config: TokenConfig
    dataset: np.ndarray | None = None  # int64 [N], index into ``datasets``
    datasets: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: float32 ``[N, T, 7]`` raw objects (batch key ``objects``): what fresh physics views
    #: are made from when these events are pretrained on; None if the source had none
    objects: np.ndarray | None = None
    #: per-event regression targets, branch name -> float32 ``[N]`` (NaN: not defined)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    #: dataset name -> where its events come from when the name alone does not say it
    #: (generated samples: ``"seed <n>"``; two samples of one process and energy share a
    #: name and event numbers): part of the held-out event keys (``finetune.heldout``)
    origins: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.tokens)
        for name in ("mask", "label", "weight", *ID_FIELDS):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} events, tokens has {n}")
        for name, v in self.values.items():
            if len(v) != n:
                raise ValueError(f"values {name!r} has {len(v)} events, tokens has {n}")
        if self.tokens.shape[2] != len(self.token_config.features):
            raise ValueError(
                f"tokens have {self.tokens.shape[2]} features, the token config "
                f"{len(self.token_config.features)}"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    def label_counts(self) -> dict[int, int]:
        """Events per data label."""
        values, counts = np.unique(self.label, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def dataset_names(self) -> np.ndarray:
        """The dataset name of every event (``object`` array).

        Sources without dataset names (shard stores) name each event after its data
        label, ``"label:<n>"``: one dataset per label, the usual layout of a labelled set.
        """
        if self.dataset is not None and self.datasets:
            return np.asarray(self.datasets, dtype=object)[self.dataset]
        return np.array([f"label:{int(v)}" for v in self.label], dtype=object)

    def take(self, index: np.ndarray) -> LabelledEvents:
        """The events at ``index`` (a copy)."""
        return LabelledEvents(
            tokens=self.tokens[index],
            mask=self.mask[index],
            label=self.label[index],
            weight=self.weight[index],
            run=self.run[index],
            luminosityBlock=self.luminosityBlock[index],
            event=self.event[index],
            token_config=self.token_config,
            dataset=None if self.dataset is None else self.dataset[index],
            datasets=list(self.datasets),
            provenance=dict(self.provenance),
            objects=None if self.objects is None else self.objects[index],
            values={k: v[index] for k, v in self.values.items()},
            origins=dict(self.origins),
        )

    @classmethod
    def concatenate(cls, parts: list[LabelledEvents]) -> LabelledEvents:
        """Join parts built with the same token config."""
        if not parts:
            raise TrainingError("no labelled events to join")
        config = parts[0].token_config
        for p in parts[1:]:
            if p.token_config.hash() != config.hash():
                raise TrainingError("cannot join labelled events of different token configs")
        names = [n for p in parts for n in p.datasets]
        offsets = np.cumsum([0] + [len(p.datasets) for p in parts[:-1]])
        dataset = None
        if all(p.dataset is not None for p in parts):
            dataset = np.concatenate([p.dataset + o for p, o in zip(parts, offsets, strict=True)])
        cat = {
            k: np.concatenate([getattr(p, k) for p in parts])
            for k in ("tokens", "mask", "label", "weight", *ID_FIELDS)
        }
        objects = None
        if all(p.objects is not None for p in parts):
            objects = np.concatenate([p.objects for p in parts])
        keys = sorted({k for p in parts for k in p.values})
        values = {
            k: np.concatenate([p.values.get(k, np.full(len(p), np.nan, np.float32)) for p in parts])
            for k in keys
        }
        origins = {k: v for p in parts for k, v in p.origins.items()}
        return cls(
            **cat, token_config=config, dataset=dataset, datasets=names, objects=objects,
            values=values, origins=origins,
        )  # fmt: skip


def dataset_keys(names: Sequence[str] | np.ndarray) -> np.ndarray:
    """A 64-bit key per dataset name (BLAKE2b of the UTF-8 name): stable across runs."""
    names = np.asarray(names, dtype=object)
    unique, inverse = np.unique(names, return_inverse=True)
    keys = np.array(
        [
            int.from_bytes(hashlib.blake2b(str(n).encode(), digest_size=8).digest(), "little")
            for n in unique
        ],
        dtype=np.uint64,
    )
    return keys[inverse.reshape(-1)] if len(unique) else np.zeros(0, np.uint64)


def event_hash(
    run: np.ndarray,
    luminosityBlock: np.ndarray,
    event: np.ndarray,
    salt: int = 0,
    dataset: np.ndarray | None = None,
) -> np.ndarray:
    """A uniform number in [0, 1) per event, a pure function of its id, dataset and ``salt``.

    ``dataset``: per-event keys of :func:`dataset_keys` (``None``: no dataset part).
    """
    ids = [np.asarray(a).astype(np.int64).view(np.uint64) for a in (run, luminosityBlock, event)]
    if dataset is not None:
        ids.insert(0, np.asarray(dataset, dtype=np.uint64))
    shape = ids[0].shape
    h = np.full(shape, np.uint64(salt * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
    for part in ids:
        h = mix64(h ^ part).reshape(shape)  # splitmix64, augment.rng's (the one copy)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def split_assignment(
    run: np.ndarray,
    luminosityBlock: np.ndarray,
    event: np.ndarray,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    salt: int = 0,
    dataset: Sequence[str] | np.ndarray | None = None,
) -> np.ndarray:
    """Split code per event (``SPLITS``: 0 train, 1 val, 2 test) from the hash of its id.

    ``dataset``: the dataset name of every event, hashed with the id so that equal ids
    in different datasets are split independently.
    """
    keys = None if dataset is None else dataset_keys(dataset)
    u = event_hash(run, luminosityBlock, event, salt, keys)
    train, val, _ = fractions
    return np.where(u < train, 0, np.where(u < train + val, 1, 2)).astype(np.int8)


def assign_splits(data: LabelledEvents, splits: SplitConfig) -> np.ndarray:
    """Split code of every event of ``data`` (dataset name + event id, ``splits`` fractions)."""
    return split_assignment(
        data.run,
        data.luminosityBlock,
        data.event,
        (splits.train, splits.val, splits.test),
        splits.salt,
        dataset=data.dataset_names(),
    )


def label_datasets(data: LabelledEvents) -> dict[int, set[str]]:
    """The dataset names behind each data label (a fileset's datasets, a store's shards)."""
    if data.dataset is not None and data.datasets:
        pairs = np.unique(np.stack([data.dataset, data.label.astype(np.int64)]), axis=1)
        out: dict[int, set[str]] = {}
        for ds, lab in pairs.T:
            out.setdefault(int(lab), set()).add(str(data.datasets[int(ds)]))
        return out
    recorded = data.provenance.get("label_datasets") or {}
    return {int(k): set(v) for k, v in recorded.items()}


def data_source(data: LabelledEvents) -> str:
    """The data's source for messages: the store or fileset path."""
    prov = data.provenance
    return str(prov.get("store") or prov.get("fileset") or "the data")


def task_targets(data: LabelledEvents, task: TaskConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Class index of every event for ``task`` (-1: not in the task or failing its selection).

    Returns the targets and a summary of the selection (events per class before/after).
    The one place the task's classes and selection meet the data: the trainer, the
    gradient-boosted references and the evaluation all call it. A task type with
    per-event values (regression) also drops the events whose value is not defined;
    the summary counts them per class (``undefined_target``).
    """
    check_class_processes(task.classes, label_datasets(data), data_source(data))
    lut = task.label_map()
    targets = np.array([lut.get(int(lab), -1) for lab in data.label], dtype=np.int64)
    passed = np.ones(len(targets), dtype=bool)
    if task.selection:
        passed = select_events(data.tokens, data.mask, data.token_config, task.selection)
    values = task_type_for(task).event_values(data)
    defined = np.ones(len(targets), bool) if values is None else np.isfinite(values)
    summary = selection_summary(task.selection, passed & defined, targets, task.class_names)
    if values is not None:
        for c, name in enumerate(task.class_names):
            in_class = (targets == c) & passed
            summary["per_class"][name]["undefined_target"] = int((in_class & ~defined).sum())
    return np.where(passed & defined, targets, -1), summary


def task_values(data: LabelledEvents, task: TaskConfig) -> np.ndarray | None:
    """Per-event values of ``task``'s type (regression targets; None for classification)."""
    return task_type_for(task).event_values(data)


def sample_labels(
    classes: np.ndarray, pool: np.ndarray, n: int, seed: int, n_classes: int
) -> np.ndarray:
    """``n`` indices from ``pool``, stratified by ``classes[pool]``, sorted.

    Each class gets its share of ``n`` (largest remainder), at least one event when
    ``n >= n_classes``; the draw is a pure function of ``(pool, n, seed)``.
    """
    pool = np.asarray(pool)
    if n > len(pool):
        raise TrainingError(f"cannot draw {n} events from {len(pool)}")
    if n == len(pool):
        return np.sort(pool)
    rng = np.random.default_rng(seed)
    by_class = [pool[classes[pool] == c] for c in range(n_classes)]
    sizes = np.array([len(b) for b in by_class], dtype=np.float64)
    share = n * sizes / sizes.sum()
    take = np.floor(share).astype(int)
    if n >= n_classes:
        take = np.maximum(take, (sizes > 0).astype(int))
    while take.sum() > n:  # the minimum of one per class overshot
        take[np.argmax(take)] -= 1
    order = np.argsort(-(share - np.floor(share)))
    i = 0
    while take.sum() < n:
        c = order[i % n_classes]
        if take[c] < sizes[c]:
            take[c] += 1
        i += 1
    out = [rng.choice(b, size=k, replace=False) for b, k in zip(by_class, take, strict=True) if k]
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


def bootstrap_labels(
    classes: np.ndarray, pool: np.ndarray, seed: int, n_classes: int
) -> np.ndarray:
    """A stratified bootstrap of ``pool`` (sorted indices, with repeats): every class
    keeps its count, its events drawn with replacement; a pure function of ``(pool,
    seed)``. Lets seeds vary the training events when all labels are used."""
    pool = np.asarray(pool)
    rng = np.random.default_rng([seed, 0xB007])
    parts = [rng.choice(b, size=len(b), replace=True) for c in range(n_classes)
             if len(b := pool[classes[pool] == c])]  # fmt: skip
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def read_labelled_fileset(path: str | Path) -> list[dict[str, Any]]:
    """Datasets of a coffea fileset JSON: ``[{name, files: [(file, tree)], label, weight}]``.

    Read by :func:`jetfm_coffea.fileset.load_fileset` (relative file paths are relative to
    the JSON's folder, made absolute). Every dataset needs an integer ``metadata.label``;
    ``metadata.weight`` (a per-event weight, default 1) is optional.
    """
    path = Path(path)
    spec = load_fileset(path)
    if not spec:
        raise ConfigError(f"fileset {path} must map dataset names to {{files, metadata}}")
    out = []
    for name, ds in spec.items():
        meta = ds["metadata"]
        label = meta.get("label")
        if isinstance(label, bool) or not isinstance(label, int):
            raise ConfigError(
                f"fileset {path}: dataset {name!r} needs an integer metadata.label, got {label!r}"
            )
        out.append(
            {
                "name": str(name),
                "files": [(f, str(t or "Events")) for f, t in ds["files"].items()],
                "label": int(label),
                "weight": float(meta.get("weight", 1.0)),
                "metadata": meta,
            }
        )
    return out


def read_values(
    file: str,
    tree: str,
    ids: tuple[np.ndarray, np.ndarray, np.ndarray],
    branches: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Per-event float branches of ``file`` for the events ``ids`` = (run, lumi, event).

    Reads every ``GenTarget_*`` branch of the file and those of ``branches`` it has,
    matched by event id (the tokens may hold a subset of the file's events: certified
    luminosity sections, ``max_events``). Raises :class:`TrainingError` for an event id
    the file does not have.
    """
    with uproot.open(file) as handle:
        events = handle[tree]
        present = events.keys()  # branch names (iterating a TTree yields branches)
        extra = set(branches)
        names = [b for b in present if b.startswith(TARGET_PREFIX) or b in extra]
        if not names:
            return {}
        arrays = events.arrays([*ID_FIELDS, *names], library="np")
    columns = (arrays[f].tolist() for f in ID_FIELDS)
    position = {key: i for i, key in enumerate(zip(*columns, strict=True))}
    wanted = zip(*(np.asarray(a).tolist() for a in ids), strict=True)
    try:
        rows = np.array([position[k] for k in wanted], dtype=np.int64)
    except KeyError as err:
        raise TrainingError(f"{file}: event {err.args[0]} has tokens but no entry") from None
    return {name: np.asarray(arrays[name], np.float32)[rows] for name in names}


def _from_fileset(
    path: str | Path,
    token_config: TokenConfig,
    max_events_per_dataset: int | None,
    value_branches: Sequence[str] = (),
) -> LabelledEvents:
    parts = []
    datasets = read_labelled_fileset(path)
    used_files: dict[str, list[str]] = {}
    for i, ds in enumerate(datasets):
        got = 0
        used_files[ds["name"]] = []
        for fname, tree in ds["files"]:
            left = None if max_events_per_dataset is None else max_events_per_dataset - got
            if left is not None and left <= 0:
                break
            meta = {**ds["metadata"], "dataset": ds["name"]}  # collision data: certified only
            tok = read_tokens(fname, token_config, tree=tree, max_events=left, metadata=meta)
            n = len(tok.tokens)
            ids = (tok.run, tok.luminosityBlock, tok.event)
            got += n
            used_files[ds["name"]].append(fname)
            parts.append(
                LabelledEvents(
                    tokens=tok.tokens,
                    mask=tok.mask,
                    label=np.full(n, ds["label"], np.int64),
                    weight=np.full(n, ds["weight"], np.float32),
                    run=np.asarray(tok.run, np.int64),
                    luminosityBlock=np.asarray(tok.luminosityBlock, np.int64),
                    event=np.asarray(tok.event, np.int64),
                    token_config=token_config,
                    dataset=np.full(n, i, np.int64),
                    datasets=[],
                    objects=object_array(tok.objects),
                    values=read_values(fname, tree, ids, value_branches) if n else {},
                )
            )
    if not parts:
        raise TrainingError(f"fileset {path} holds no file")
    data = LabelledEvents.concatenate(parts)
    data.datasets = [ds["name"] for ds in datasets]
    data.origins = {
        ds["name"]: f"seed {ds['metadata']['seed']}"
        for ds in datasets
        if ds["metadata"].get("is_mc") and ds["metadata"].get("seed") is not None
    }
    data.provenance = {
        "source": "fileset",
        "fileset": str(path),
        "files": used_files,
        "labels": {ds["name"]: ds["label"] for ds in datasets},
        "n_events": len(data),
        "max_events_per_dataset": max_events_per_dataset,
    }
    return data


def _store_label_datasets(store: str | Path) -> dict[int, list[str]]:
    """Data label -> the datasets of the store's shards with that label."""
    from jetfm_coffea.shards.store import open_store

    out: dict[int, set[str]] = {}
    for record in open_store(store, check_shards=False).records:
        if record.label is not None:
            out.setdefault(int(record.label), set()).add(record.dataset)
    return {k: sorted(v) for k, v in sorted(out.items())}


def _from_shards(store: str | Path, max_events: int | None) -> LabelledEvents:
    import torch

    loader = open_loader(
        store, batch_size=1024, seed=0, rank=0, world_size=1, load_views=False, load_objects=True
    )
    loader.set_epoch(0)
    width = load_token_config(loader.token_config).n_tokens
    cols: dict[str, list[np.ndarray]] = {}
    n = 0
    for batch in loader:
        if "label" not in batch:
            raise TrainingError(f"shard store {store} carries no labels (batch key 'label')")
        for key in ("tokens", "mask", "objects", "label", "weight", *ID_FIELDS):
            value = batch.get(key)
            if value is None and key == "weight":
                value = torch.ones(len(batch["tokens"]))
            value = np.asarray(value)
            if key in ("tokens", "mask", "objects"):  # each batch is padded to its longest event
                pad = [(0, 0), (0, width - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
                value = np.pad(value, pad)
            cols.setdefault(key, []).append(value)
        n += len(batch["tokens"])
        if max_events is not None and n >= max_events:
            break
    if not cols:
        raise TrainingError(f"shard store {store} yields no events")
    arrays = {k: np.concatenate(v)[:max_events] for k, v in cols.items()}
    return LabelledEvents(
        tokens=arrays["tokens"].astype(np.float32),
        mask=arrays["mask"].astype(bool),
        label=arrays["label"].astype(np.int64),
        weight=arrays["weight"].astype(np.float32),
        run=arrays["run"].astype(np.int64),
        luminosityBlock=arrays["luminosityBlock"].astype(np.int64),
        event=arrays["event"].astype(np.int64),
        objects=arrays["objects"].astype(np.float32),
        token_config=load_token_config(loader.token_config),
        provenance={
            "source": "shards",
            "store": str(store),
            "label_datasets": _store_label_datasets(store),
            "n_events": len(arrays["label"]),
            **dict(getattr(loader, "provenance", None) or {}),
        },
    )


def load_labelled(
    *,
    shards: str | Path | None = None,
    fileset: str | Path | None = None,
    token_config: TokenConfig | str | Path | dict | None = None,
    max_events_per_dataset: int | None = None,
    max_events: int | None = None,
    value_branches: Sequence[str] = (),
) -> LabelledEvents:
    """The one place ``--shards STORE`` / ``--fileset FILESET.json`` become labelled events.

    ``token_config`` builds the tokens of a fileset (pass the pretrained run's so the
    two match); a shard store carries its own, checked later against the model's.
    A fileset read also picks up the regression targets (``GenTarget_*`` and
    ``value_branches``, see :func:`read_values`); shard stores carry none.
    """
    if (shards is None) == (fileset is None):
        raise TrainingError("give exactly one data source: --shards STORE or --fileset FS.json")
    if shards is not None:
        return _from_shards(shards, max_events)
    if not Path(fileset).is_file():
        raise TrainingError(f"fileset {fileset} does not exist")
    data = _from_fileset(
        fileset, load_token_config(token_config), max_events_per_dataset, value_branches
    )
    return data if max_events is None else data.take(np.arange(min(max_events, len(data))))


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive integers."""
    return -(-a // b)


def balanced_batch_size(n: int, batch_size: int) -> int:
    """At most ``batch_size``, cutting ``n`` events into equal batches (fewer than one left over
    per batch), so that a small label count does not lose a large remainder every epoch."""
    if n <= 0:
        return batch_size
    return max(1, n // ceil_div(n, batch_size))
