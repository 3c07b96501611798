"""coffea processor that writes pretraining shards on the workers.

Each coffea chunk (one entry range of one file) becomes one shard: the selected physics
objects of the single token path (:func:`jetfm_coffea.tokens.select_ragged`), stored
ragged (schema 2.0.0, no tokens), optionally V stored augmented views, optional label
(fileset metadata ``label``) and weights (``genWeight`` when present), written by the
worker itself. Only a small summary goes back to the client. A chunk whose shard is
already complete is skipped without reading a byte (resume after a crash).

Virtual mode: run with coffea's ``processor.Runner`` (Iterative, Futures or Dask
executor). Dask mode: :func:`coffea.dataset_tools.apply_to_fileset` with the partition
table in the dataset metadata (``jetfm_partitions``, see
:func:`jetfm_coffea.jobs.shards.dask_fileset`); ``process`` then returns one delayed
summary per partition (compute them, then :func:`merge_summaries`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from coffea import processor

from jetfm_coffea.errors import ConfigError, ShardError
from jetfm_coffea.opendata.lumimask import lumimask_for
from jetfm_coffea.selection.blinding import BlindingConfig
from jetfm_coffea.selection.chunk import blind, selection_record
from jetfm_coffea.selection.lumi import LumiPolicy, certify_chunk, run_lumi_summary
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


def empty_summary() -> dict[str, Any]:
    """The accumulator of a run that processed nothing."""
    return {
        "events_in": 0,
        "events_written": 0,
        "events_existing": 0,
        "views_written": {},
        "shards_written": 0,
        "shards_existing": 0,
        "shards": [],
    }


def _summary(info: ShardInfo) -> dict[str, Any]:
    out = empty_summary()
    n = info.n_events
    out["events_in"] = n
    if info.status == "written":
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
    ) -> dict[str, Any]:
        """Blind, make the stored views of ``objects`` (if asked for) and write the shard.

        ``lumi`` is what the certified-luminosity mask kept and dropped of the chunk
        (:func:`~jetfm_coffea.selection.lumi.lumi_summary`), None if it was not masked;
        ``record_ids`` the dataset's Open Data records (fileset metadata), for provenance.
        """
        policy = policy or LumiPolicy(source.dataset, "undeclared")
        n_read = len(objects) + (lumi or {}).get("events_dropped", 0)
        objects, weight, blinded = blind(objects, weight, self.blinding, policy, self.token_config)
        selection = selection_record(policy, n_read, lumi, blinded, record_ids)
        views = []
        if self.pipeline is not None:
            padded = objects
            if isinstance(objects, RaggedObjects):
                padded = objects.padded(self.token_config.n_tokens)
            views = stored_views(padded, self.pipeline, self.token_config)
        info = write_shard(
            self.store,
            objects,
            source,
            self.token_config,
            views=views,
            pipeline=self.pipeline,
            label=label,
            weight=weight,
            if_exists=self.if_exists,
            chunk_events=self.chunk_events,
            compression_level=self.compression_level,
            selection=selection,
        )
        return _summary(info)

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
        if self.if_exists == "skip" and shard_exists(self.store, source.path):
            return _summary(existing_info(Path(self.store), source.path))
        policy = LumiPolicy.from_metadata(meta)
        events, lumi = certify_chunk(events, policy)  # certified luminosity sections first
        objects = select_ragged(events, self.token_config)
        weight = None
        if WEIGHT_BRANCH in events.fields:
            weight = np.asarray(ak.to_numpy(events[WEIGHT_BRANCH]), np.float32)
        return self.write_objects(
            objects, source, label, weight, policy, lumi, meta.get("record_ids")
        )

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
        with_weight = WEIGHT_BRANCH in events.fields
        record = dak.map_partitions(
            _partition_record,
            events,
            config=self.token_config,
            with_weight=with_weight,
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


def _partition_record(events: Any, config: Any, with_weight: bool) -> ak.Array:
    """Token record of one partition (+ ``weight``); on a typetracer, touch the inputs only."""
    record = _record_partition(events, config)
    if ak.backend(events) == "typetracer":
        if not with_weight:
            return record
        ak.typetracer.touch_data(events[WEIGHT_BRANCH])
        empty = ak.Array(record.layout.form.length_zero_array())
        empty = ak.with_field(empty, np.zeros(0, np.float32), "weight")
        return ak.Array(empty.layout.to_typetracer(forget_length=True))
    if with_weight:
        weight = np.asarray(ak.to_numpy(events[WEIGHT_BRANCH]), np.float32)
        record = ak.with_field(record, weight, "weight")
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
    weight = None
    if "weight" in record.fields:
        weight = np.asarray(ak.to_numpy(record["weight"]), np.float32)
        record = record[[f for f in record.fields if f != "weight"]]
    tokens = EventTokens.from_awkward(record, proc.token_config)
    return proc.write_objects(tokens.objects, source, label, weight, policy, lumi, record_ids)
