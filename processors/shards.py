"""coffea processor that writes pretraining shards on the workers.

Each coffea chunk (one entry range of one file) becomes one shard: the selected physics
objects of the single token path (:func:`jetfm_coffea.tokens.select_ragged`), stored
ragged (schema 2.1.0, no tokens), optionally V stored augmented views, optional label
(fileset metadata ``label``), weights (``genWeight`` when present) and re-simulation ids
(``resim_group``/``resim_copy`` when present, see :mod:`jetfm_coffea.generate.resim`),
written by the worker itself. Only a small summary goes back to the client. A chunk whose shard is
already complete is skipped without reading a byte (resume after a crash).

Virtual mode: run with coffea's ``processor.Runner`` (Iterative, Futures or Dask
executor). Dask mode: :func:`coffea.dataset_tools.apply_to_fileset` with the partition
table in the dataset metadata (``jetfm_partitions``, see
:func:`jetfm_coffea.jobs.shards.dask_fileset`); ``process`` then returns one delayed
summary per partition (compute them, then :func:`merge_summaries`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from coffea import processor

from jetfm_coffea.errors import ConfigError, ShardError, ShardExistsError
from jetfm_coffea.opendata.lumimask import lumimask_for
from jetfm_coffea.selection.blinding import (
    BlindingConfig,
    as_read_config,
    as_read_objects,
    region_masks,
)
from jetfm_coffea.selection.chunk import (
    blind,
    check_resumed_selection,
    selection_record,
    selection_signature,
)
from jetfm_coffea.selection.lumi import LumiPolicy, certify_chunk, run_lumi_summary
from jetfm_coffea.shards.claims import claim_selection
from jetfm_coffea.shards.format import RESIM_ARRAYS
from jetfm_coffea.shards.shard import open_shard
from jetfm_coffea.shards.views import load_augmentation, stored_views
from jetfm_coffea.shards.writer import (
    ShardInfo,
    ShardSource,
    existing_info,
    shard_exists,
    write_shard,
)
from jetfm_coffea.tokens import (
    EventObjects,
    EventTokens,
    RaggedObjects,
    load_token_config,
    select_ragged,
)
from jetfm_coffea.tokens.build import _record_partition

__all__ = ["PARTITIONS_KEY", "ShardProcessor", "empty_summary", "merge_summaries"]

#: Dataset-metadata key holding the dask-mode partition table.
PARTITIONS_KEY = "jetfm_partitions"
WEIGHT_BRANCH = "genWeight"
#: Events fields carried per event into the shard, by their shard array name (NanoAOD
#: schemas read the branches ``resim_group``/``resim_copy`` as the singleton collection
#: ``resim`` with fields ``group``/``copy``).
EVENT_BRANCHES: dict[str, tuple[str, ...]] = {
    "weight": (WEIGHT_BRANCH,),
    **{name: tuple(name.split("_", 1)) for name in RESIM_ARRAYS},
}
#: Dask mode: the fields of a partition's token record (the rest is carried along).
_TOKEN_FIELDS = ("tokens", *(f.name for f in dataclass_fields(EventObjects)))
#: Dask mode: the record field holding a blinding region's mask, ``blind:<region>``.
BLIND_PREFIX = "blind:"


def _has(events: Any, path: tuple[str, ...]) -> bool:
    for name in path:
        if name not in events.fields:
            return False
        events = events[name]
    return True


def _field(events: Any, name: str) -> Any:
    """The events field carried into the shard array ``name``."""
    for part in EVENT_BRANCHES[name]:
        events = events[part]
    return events


def _carried(events: Any) -> list[str]:
    """The shard names of the :data:`EVENT_BRANCHES` present in ``events``."""
    return [name for name, path in EVENT_BRANCHES.items() if _has(events, path)]


def _rows(arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    """Per-event arrays as one structured array (they travel through blinding together)."""
    if not arrays:
        return None
    out = np.empty(len(next(iter(arrays.values()))), [(k, v.dtype) for k, v in arrays.items()])
    for name, values in arrays.items():
        out[name] = values
    return out


def _split_rows(rows: np.ndarray | None) -> tuple[np.ndarray | None, dict[str, np.ndarray] | None]:
    """``(weight, resim ids)`` of :func:`_rows` output (None where absent)."""
    names = () if rows is None else rows.dtype.names or ()
    weight = np.ascontiguousarray(rows["weight"]) if "weight" in names else None
    resim = {n: np.ascontiguousarray(rows[n]) for n in RESIM_ARRAYS if n in names}
    return weight, resim or None


def empty_summary() -> dict[str, Any]:
    """The accumulator of a run that processed nothing."""
    return {
        "events_in": 0,
        "events_written": 0,
        "events_existing": 0,
        "views_written": {},
        "shards_written": 0,
        "shards_existing": 0,
        "objects_dropped": 0,  # non-finite kinematics or negative pT, in written shards
        "shards": [],
    }


def _summary(info: ShardInfo, dropped: int = 0) -> dict[str, Any]:
    out = empty_summary()
    n = info.n_events
    out["events_in"] = n
    if info.status == "written":
        out["objects_dropped"] = int(dropped)
        out["events_written"] = n
        out["shards_written"] = 1
        out["views_written"] = {str(v): n for v in range(info.n_views)}
    else:
        out["events_existing"] = n
        out["shards_existing"] = 1
    out["shards"] = [info.as_dict()]
    return out


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Add up chunk summaries (what coffea's accumulate does for the Runner)."""
    return processor.accumulate(list(summaries), empty_summary())


def _label(metadata: dict[str, Any]) -> int | None:
    label = metadata.get("label")
    if label is None:
        return None
    try:
        return int(label)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"dataset {metadata.get('dataset')!r}: metadata label {label!r} is not an integer"
        ) from err


class ShardProcessor(processor.ProcessorABC):
    """Build one shard per chunk and write it from the worker (stateless, picklable).

    Parameters
    ----------
    store
        Shard store root (created beforehand with :func:`~jetfm_coffea.shards.create_store`
        on a filesystem every worker can write).
    token_config
        :class:`~jetfm_coffea.tokens.TokenConfig` (or dict / YAML path).
    augmentation
        The ``augment:`` config section or a pipeline; None: no views.
    if_exists
        ``"skip"`` complete shards (resume, default) or ``"overwrite"`` them.
    blinding
        Signal regions whose events never reach a shard (collision data; simulation
        with ``apply_to_mc``). Collision data are first restricted to the certified
        luminosity sections of their golden JSON (dataset metadata, see
        :mod:`jetfm_coffea.selection.lumi`); both are recorded in each shard.
    """

    def __init__(
        self,
        store: str | Path,
        token_config: Any = None,
        augmentation: Any = None,
        *,
        if_exists: Literal["skip", "overwrite"] = "skip",
        chunk_events: int | None = None,
        compression_level: int = 1,
        blinding: BlindingConfig | None = None,
    ):
        self.store = str(store)
        self.blinding = blinding
        self.token_config = load_token_config(token_config)
        self.pipeline = load_augmentation(augmentation)
        self.if_exists = if_exists
        self.chunk_events = chunk_events
        self.compression_level = compression_level

    # -------------------------------------------------------------- one chunk

    def write_objects(
        self,
        objects: EventObjects | RaggedObjects,
        source: ShardSource,
        label: int | None,
        weight: np.ndarray | None,
        policy: LumiPolicy | None = None,
        lumi: dict[str, Any] | None = None,
        record_ids: list[int] | None = None,
        resim: dict[str, np.ndarray] | None = None,
        as_read: EventObjects | None = None,
        masks: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Any]:
        """Blind, make the stored views of ``objects`` (if asked for) and write the shard.

        ``weight`` and the re-simulation ids ``resim`` (both of ``RESIM_ARRAYS`` or None)
        are per event and follow the kept events.

        ``lumi`` is what the certified-luminosity mask kept and dropped of the chunk
        (:func:`~jetfm_coffea.selection.lumi.lumi_summary`), None if it was not masked;
        ``record_ids`` the dataset's Open Data records (fileset metadata), for provenance.
        """
        policy = policy or LumiPolicy(source.dataset, "undeclared")
        # commit time: this build's selection must still be the one the store holds
        signature = selection_signature(policy, self.blinding)
        claim_selection(self.store, source.dataset, signature, shard=source.path)
        n_read = len(objects) + (lumi or {}).get("events_dropped", 0)
        per_event = {"weight": weight} if weight is not None else {}
        per_event.update(resim or {})
        objects, rows, blinded = blind(
            objects, _rows(per_event), self.blinding, policy, self.token_config, as_read, masks
        )
        weight, resim = _split_rows(rows)
        selection = selection_record(policy, n_read, lumi, blinded, record_ids)
        views = []
        if self.pipeline is not None:
            padded = objects
            if isinstance(objects, RaggedObjects):
                padded = objects.padded(self.token_config.n_tokens)
            views = stored_views(padded, self.pipeline, self.token_config)
        dropped = int(np.sum(objects.n_nonfinite))
        try:
            info = write_shard(
                self.store,
                objects,
                source,
                self.token_config,
                views=views,
                pipeline=self.pipeline,
                label=label,
                weight=weight,
                resim=resim,
                provenance={"objects_dropped": dropped},
                if_exists=self.if_exists,
                chunk_events=self.chunk_events,
                compression_level=self.compression_level,
                selection=selection,
            )
        except ShardExistsError:  # another build committed it while this one wrote it
            if self.if_exists != "skip" or not shard_exists(self.store, source.path):
                raise
            info = existing_info(Path(self.store), source.path)
        except OSError as err:  # ENOSPC, EDQUOT, EACCES...: nothing partial is published
            if isinstance(err, ShardError):
                raise
            raise ShardError(
                str(Path(self.store) / source.path),
                f"cannot write the shard: {err.strerror or err}"
                + (f" ({errno.errorcode[err.errno]})" if err.errno in errno.errorcode else "")
                + "; no partial shard was kept and the complete ones stay: free the space "
                "(or fix the store) and rerun the same command to resume",
            ) from err
        if info.status == "existing":
            self._check_existing(source.path, policy)
        return _summary(info, dropped)

    def _check_existing(self, path: str, policy: LumiPolicy) -> None:
        """A shard found in place must have been selected as this build selects."""
        attrs = open_shard(self.store, path, full_check=False).attrs
        check_resumed_selection(path, attrs.get("selection"), policy, self.blinding)

    def process(self, events: Any) -> Any:
        """Write the chunk's shard (virtual/eager events) or schedule it (dask events)."""
        if type(events).__module__.startswith("dask_awkward"):
            return self._process_dask(events)
        meta = dict(events.metadata)
        source = ShardSource(
            dataset=str(meta["dataset"]),
            file=str(meta["filename"]),
            uuid=str(meta.get("fileuuid") or ""),
            entry_start=int(meta["entrystart"]),
            entry_stop=int(meta["entrystop"]),
            treename=str(meta.get("treename") or "Events"),
        )
        label = _label(meta)
        policy = LumiPolicy.from_metadata(meta)
        if self.if_exists == "skip" and shard_exists(self.store, source.path):
            self._check_existing(source.path, policy)
            return _summary(existing_info(Path(self.store), source.path))
        events, lumi = certify_chunk(events, policy)  # certified luminosity sections first
        objects = select_ragged(events, self.token_config)
        as_read = None
        if self._blinds(policy) and self.blinding.reads_collections:  # type: ignore[union-attr]
            as_read = as_read_objects(events, self.token_config)  # regions: collections as read
        carried = {name: ak.to_numpy(_field(events, name)) for name in _carried(events)}
        weight, resim = _split_rows(_rows(carried))
        if weight is not None:
            weight = weight.astype(np.float32)
        return self.write_objects(
            objects, source, label, weight, policy, lumi, meta.get("record_ids"), resim, as_read
        )

    def _blinds(self, policy: LumiPolicy) -> bool:
        return self.blinding is not None and self.blinding.applies_to(policy.kind)

    # -------------------------------------------------------------- dask mode

    def _process_dask(self, events: Any) -> list[Any]:
        import dask
        import dask_awkward as dak

        meta = dict(events.metadata or {})
        table = meta.get(PARTITIONS_KEY)
        if table is None:
            raise ShardError(
                self.store,
                f"dask mode needs the partition table in the dataset metadata "
                f"({PARTITIONS_KEY!r}); build the fileset with "
                "jetfm_coffea.jobs.shards.dask_fileset",
            )
        policy = LumiPolicy.from_metadata(meta)
        run_lumi = [None] * len(table)
        if policy.masked:  # certified luminosity sections first
            ids = dak.zip(
                {"run": events["run"], "luminosityBlock": events["luminosityBlock"]},
                depth_limit=1,
            )
            run_lumi = ids.to_delayed(optimize_graph=True)
            events = events[lumimask_for(events, policy.golden_json)]
        record = dak.map_partitions(
            _partition_record,
            events,
            config=self.token_config,
            carried=tuple(_carried(events)),
            blinding=self.blinding if self._blinds(policy) else None,
            label="jetfm-shard-record",
        )
        if record.npartitions != len(table):
            raise ShardError(
                self.store,
                f"{record.npartitions} partitions for {len(table)} partition-table entries",
            )
        parts = record.to_delayed(optimize_graph=True)
        label = _label(meta)
        write = dask.delayed(_write_partition, pure=False)
        return [
            write(
                part,
                self,
                ShardSource(dataset=str(meta["dataset"]), **entry),
                label,
                policy,
                ids,
                meta.get("record_ids"),
            )
            for part, entry, ids in zip(parts, table, run_lumi, strict=True)
        ]

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


def _partition_record(
    events: Any,
    config: Any,
    carried: tuple[str, ...],
    blinding: BlindingConfig | None = None,
) -> ak.Array:
    """Token record of one partition (+ the ``carried`` per-event arrays, by shard name,
    + with ``blinding`` one ``blind:<region>`` mask per region, evaluated here where the
    collections as read are); on a typetracer, touch the inputs only."""
    record = _record_partition(events, config)
    if ak.backend(events) == "typetracer":
        if not carried and blinding is None:
            return record
        empty = ak.Array(record.layout.form.length_zero_array())
        for name in carried:
            ak.typetracer.touch_data(_field(events, name))
            dtype = np.float32 if name == "weight" else np.dtype(RESIM_ARRAYS[name])
            empty = ak.with_field(empty, np.zeros(0, dtype), name)
        if blinding is not None:
            _record_partition(events, as_read_config(config))  # touches the collections
            for region in blinding.regions:
                empty = ak.with_field(empty, np.zeros(0, bool), f"{BLIND_PREFIX}{region.name}")
        return ak.Array(empty.layout.to_typetracer(forget_length=True))
    for name in carried:
        values = ak.to_numpy(_field(events, name))
        dtype = np.float32 if name == "weight" else np.dtype(RESIM_ARRAYS[name])
        record = ak.with_field(record, np.asarray(values, dtype), name)
    if blinding is not None:
        objects = EventTokens.from_awkward(record[list(_TOKEN_FIELDS)], config).objects
        as_read = as_read_objects(events, config) if blinding.reads_collections else None
        for name, mask in region_masks(blinding, objects, config, as_read).items():
            record = ak.with_field(record, mask, f"{BLIND_PREFIX}{name}")
    return record


def _write_partition(
    record: ak.Array,
    proc: ShardProcessor,
    source: ShardSource,
    label: int | None,
    policy: LumiPolicy,
    run_lumi: ak.Array | None,
    record_ids: list[int] | None,
) -> dict[str, Any]:
    # what the mask kept and dropped, from the partition's (run, lumi) before the mask
    lumi = None if run_lumi is None else run_lumi_summary(run_lumi, policy)[0]
    carried = [f for f in record.fields if f in EVENT_BRANCHES]
    weight, resim = _split_rows(_rows({f: ak.to_numpy(record[f]) for f in carried}))
    masks = {
        f[len(BLIND_PREFIX) :]: ak.to_numpy(record[f]).astype(bool)
        for f in record.fields
        if f.startswith(BLIND_PREFIX)
    }
    record = record[list(_TOKEN_FIELDS)]
    tokens = EventTokens.from_awkward(record, proc.token_config)
    return proc.write_objects(
        tokens.objects,
        source,
        label,
        weight,
        policy,
        lumi,
        record_ids,
        resim,
        masks=masks or None,
    )
