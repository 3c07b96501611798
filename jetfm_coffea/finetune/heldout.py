"""Held-out events stay out of pretraining: pool construction and the leak guard.

An event is identified by ``(dataset, run, luminosityBlock, event)``, the key the task
splits hash (:func:`jetfm_coffea.finetune.data.split_assignment`): generated samples
number their events from 1 with ``run = 1``, so the event id alone is not unique across
samples. A task's held-out events are the events of its classes (data labels) in its
validation or test split.

* :func:`pool_without_held_out` builds a pretraining pool from labelled events minus a
  task's held-out events;
* :func:`check_pool_excludes_held_out` is the guard: a pool that holds a task's held-out
  events raises :class:`~jetfm_coffea.errors.TrainingError` before any training;
* :func:`write_pool_events` / :func:`read_pool_events` keep a pool's event keys beside
  its pretraining run (``jetfm_coffea.model.rundir.POOL_EVENTS``), so that fine-tuning
  against that encoder
  (:func:`jetfm_coffea.finetune.trainer.prepare_finetune`) checks the task's test events
  against the pool the encoder really saw;
* :func:`check_supervised_labels` keeps a task's signal process out of the supervised
  labels of an encoder that task evaluates (issue 26), and
  :func:`check_pool_without_labels` a control pool free of every event of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune.data import SPLITS, LabelledEvents
from jetfm_coffea.tokens.fields import ID_FIELDS

if TYPE_CHECKING:
    from jetfm_coffea.finetune.config import TaskConfig
    from jetfm_coffea.finetune.trainer import FinetuneSetup, PretrainedEncoder

__all__ = [
    "HELD_OUT_SPLITS",
    "EventKey",
    "check_pool_excludes_held_out",
    "check_pool_without_labels",
    "check_supervised_labels",
    "event_key_list",
    "event_keys",
    "held_out_index",
    "pool_without_held_out",
    "read_pool_events",
    "tagged_dataset_names",
    "without_events",
    "write_pool_events",
]

#: The splits a pretraining pool leaves out: the task's validation and test events.
HELD_OUT_SPLITS: tuple[str, ...] = ("val", "test")

EventKey = tuple[str, int, int, int]


def tagged_dataset_names(data: LabelledEvents) -> np.ndarray:
    """Per event: its dataset name, with ``@<origin>`` where the data know where the
    dataset comes from (``LabelledEvents.origins``: a generated sample's seed)."""
    names = data.dataset_names()
    if not data.origins:
        return names
    tagged = {n: f"{n}@{o}" for n, o in data.origins.items()}
    return np.array([tagged.get(n, n) for n in names.tolist()], dtype=object)


def event_key_list(data: LabelledEvents, index: np.ndarray | None = None) -> list[EventKey]:
    """``(dataset[@origin], run, luminosityBlock, event)`` of the events at ``index``
    (default all), in order."""
    index = np.arange(len(data)) if index is None else np.asarray(index)
    return list(
        zip(
            tagged_dataset_names(data)[index].tolist(),
            data.run[index].tolist(),
            data.luminosityBlock[index].tolist(),
            data.event[index].tolist(),
            strict=True,
        )
    )


def event_keys(data: LabelledEvents, index: np.ndarray | None = None) -> set[EventKey]:
    """The set of :func:`event_key_list`."""
    return set(event_key_list(data, index))


def without_events(data: LabelledEvents, excluded: set[EventKey]) -> LabelledEvents:
    """Every event of ``data`` whose key is not in ``excluded``."""
    keys = event_key_list(data)
    keep = np.fromiter((k not in excluded for k in keys), dtype=bool, count=len(data))
    return data.take(np.flatnonzero(keep))


def held_out_index(setup: FinetuneSetup, splits: Sequence[str] = HELD_OUT_SPLITS) -> np.ndarray:
    """Indices into ``setup.data`` of the task's events (its classes' data labels, selected
    or not: the split is a property of the event) in ``splits``."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise TrainingError(f"unknown splits {unknown}; the splits are {list(SPLITS)}")
    labels = sorted({lab for labs in setup.task.classes.values() for lab in labs})
    in_task = np.isin(setup.data.label, labels)
    in_splits = np.isin(setup.split, [SPLITS[s] for s in splits])
    return np.flatnonzero(in_task & in_splits)


def pool_without_held_out(
    data: LabelledEvents, setup: FinetuneSetup, splits: Sequence[str] = HELD_OUT_SPLITS
) -> LabelledEvents:
    """Every event of ``data`` except the held-out events (``splits``) of ``setup``'s task."""
    return without_events(data, event_keys(setup.data, held_out_index(setup, splits)))


def check_pool_excludes_held_out(
    pool: LabelledEvents | set[EventKey],
    setup: FinetuneSetup,
    *,
    pool_name: str,
    splits: Sequence[str] = ("test",),
) -> None:
    """Raise :class:`TrainingError` if the pretraining pool ``pool_name`` (events or their
    keys) holds an event of ``setup``'s task in ``splits`` (default: its test split).
    Keys carry the dataset's origin (a generated sample's seed) where known; a pool whose
    keys carry none (written before origins existed) is compared by dataset name."""
    keys = event_keys(pool) if isinstance(pool, LabelledEvents) else pool
    held = event_keys(setup.data, held_out_index(setup, splits))
    if not any("@" in k[0] for k in keys):  # a pool written before origins: names only
        held = {(k[0].split("@", 1)[0], *k[1:]) for k in held}
    leaked = keys & held
    if leaked:
        shown = ", ".join(map(str, sorted(leaked)[:3]))
        raise TrainingError(
            f"the pretraining pool {pool_name} contains {len(leaked)} {'/'.join(splits)} "
            f"events of the task (classes {list(setup.task.classes)}; by dataset, run, "
            f"luminosityBlock, event), e.g. {shown}: a label-efficiency evaluation against "
            "this encoder would test on events it was pretrained on; pretrain on a pool "
            "without them (jetfm_coffea.finetune.heldout.pool_without_held_out)"
        )


def write_pool_events(path: str | Path, data: LabelledEvents) -> Path:
    """Write the event keys of the pool ``data`` to ``path`` (``.npz``)."""
    path = Path(path)
    ids = {name: getattr(data, name) for name in ID_FIELDS}
    np.savez_compressed(path, dataset=tagged_dataset_names(data).astype(str), **ids)
    return path


def read_pool_events(path: str | Path) -> set[EventKey]:
    """The event keys written by :func:`write_pool_events`."""
    with np.load(path, allow_pickle=False) as f:
        cols = [f[k].tolist() for k in ("dataset", *ID_FIELDS)]
    return set(zip(*cols, strict=True))


def _signal_labels(task: TaskConfig) -> set[int]:
    return {int(x) for x in task.classes[task.signal_class]}


def check_supervised_labels(name: str, encoder: PretrainedEncoder, task: TaskConfig) -> None:
    """:class:`ConfigError` if ``encoder`` was pretrained with a supervised term that
    knows the answer of ``task``: the ``process`` term with a signal label among its
    classes, the older ``supervised`` term (every label of its pool), or, for a
    regression task, the ``truth`` term regressing the task's own target."""
    cfg = encoder.pretrain_config
    sections = cfg.objective.sections if cfg is not None else {}
    where = encoder.run_dir or f"encoder {name!r}"
    if task.type == "regression":
        target = f"GenTarget_{task.options.get('target', '')}"
        truth = sections.get("truth")
        if truth is not None and truth.weight > 0 and target in truth.targets:
            raise ConfigError(
                f"encoder {name!r} ({where}) was pretrained to regress {target}, the "
                "target of this regression task: evaluating it would test what it was "
                "taught; pretrain without that truth target"
            )
        return
    signal = _signal_labels(task)
    process = sections.get("process")
    if process is not None and process.weight > 0 and signal & set(process.labels):
        raise ConfigError(
            f"encoder {name!r} ({where}) was pretrained to classify the process labels "
            f"{process.labels}, among them the signal of task {task.signal_class!r} "
            f"(labels {sorted(signal)}): evaluating the task on it would test what it was "
            "taught; pretrain with supervised_sections(..., exclude=<the signal labels>)"
        )
    legacy = sections.get("supervised")
    if legacy is not None and legacy.weight > 0:
        raise ConfigError(
            f"encoder {name!r} ({where}) was pretrained with the 'supervised' term, which "
            f"learns every label of its pool, the signal of task {task.signal_class!r} "
            "included as far as anyone can tell; use the 'process' term with the signal "
            "labels excluded"
        )


def check_pool_without_labels(pool: LabelledEvents, task: TaskConfig, what: str) -> None:
    """:class:`ConfigError` if the control ``pool`` holds any event of the ``task``'s
    signal process (by data label)."""
    signal = sorted(_signal_labels(task))
    n = int(np.isin(pool.label, signal).sum())
    if n:
        raise ConfigError(
            f"{what}: {n} events of the signal process of task {task.signal_class!r} "
            f"(labels {signal}) are in a pool that must hold none"
        )
