"""The one token-building path: NanoEvents -> padded object kinematics -> token features.

``build_tokens(events, config)`` is used by the shard builder, by the inspection
processor and by score injection alike. It accepts eager or virtual NanoEvents
(returns :class:`EventTokens` of numpy arrays) and dask-awkward NanoEvents (returns a
dask-awkward record array, one record per event, which computes to the same numbers;
turn it into :class:`EventTokens` with :meth:`EventTokens.from_awkward`).
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea.errors import ConfigError, MissingCollectionError
from jetfm_coffea.tokens.config import CollectionSpec, TokenConfig, load_token_config
from jetfm_coffea.tokens.features import compute_features
from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS
from jetfm_coffea.tokens.variations import Variation

__all__ = [
    "KINEMATICS",
    "EventObjects",
    "EventTokens",
    "RaggedObjects",
    "build_tokens",
    "check_collections",
    "required_branches",
    "select_objects",
    "select_ragged",
    "token_record",
    "tokens_from_objects",
]

KINEMATICS = OBJECT_FIELDS  # the padded object fields of EventObjects (old name)

_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class MissingCollectionWarning(UserWarning):
    """An optional collection is absent from a file; it contributes no tokens."""


def _filename(events: Any) -> str | None:
    meta = getattr(events, "metadata", None) or {}
    name = meta.get("filename")
    return str(name) if name else None


def check_collections(events: Any, config: TokenConfig) -> list[CollectionSpec]:
    """Return the collections of ``config`` present in ``events``.

    A missing non-optional collection (or a branch a collection needs) raises
    :class:`MissingCollectionError` naming the collection and the file; a missing
    optional collection gives one :class:`MissingCollectionWarning`.
    """
    present = set(events.fields)
    path = _filename(events)
    usable = []
    for spec in config.collections:
        if spec.name not in present:
            if spec.optional:
                warnings.warn(
                    f"optional collection {spec.name!r} not in {path or 'the input'}: no tokens",
                    MissingCollectionWarning,
                    stacklevel=3,
                )
                continue
            raise MissingCollectionError(spec.name, path)
        have = set(events[spec.name].fields)
        missing = sorted(set(_needed_fields(spec)) - have)
        if missing:
            raise MissingCollectionError(spec.name, path, [f"{spec.name}_{m}" for m in missing])
        usable.append(spec)
    return usable


def _needed_fields(spec: CollectionSpec) -> list[str]:
    """The fields of one collection the tokens read (b-tag branches are optional)."""
    needed = ["pt", "phi"] if spec.kind == "met" else ["pt", "eta", "phi", "mass"]
    needed += [c.branch for c in spec.cuts if c.branch not in needed]
    if spec.has_charge:
        needed.append("charge")
    return needed


def required_branches(
    config: TokenConfig | None = None, *, synthesised: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """The NanoAOD branches a file must carry for ``config``, by collection.

    Optional collections are left out; the event ids come first under ``"event ids"``.
    Branches the NanoAOD schema makes itself when absent (``synthesised``, e.g. coffea's
    ``Photon_mass``) are not required. Checked on each input before any chunk runs, so
    a file that lacks a collection gets one error naming every missing collection.

    >>> required_branches()["MET"]
    ['MET_pt', 'MET_phi']
    """
    config = load_token_config(config)
    out = {"event ids": list(ID_FIELDS)}
    for spec in config.collections:
        if not spec.optional:
            names = [f"{spec.name}_{f}" for f in _needed_fields(spec)]
            out[spec.name] = [b for b in names if b not in synthesised]
    return out


def _flat(array: Any) -> np.ndarray:
    """Flat numpy content of a jagged (or flat) awkward array, without copies if possible."""
    layout = ak.to_layout(array)
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
        layout.content, ak.contents.NumpyArray
    ):
        offsets = np.asarray(layout.offsets.data)
        return np.asarray(layout.content.data)[offsets[0] : offsets[-1]]
    if isinstance(layout, ak.contents.NumpyArray):
        return np.asarray(layout.data)
    if array.ndim > 1:
        array = ak.flatten(array, axis=1)
    return np.asarray(ak.to_numpy(array))


def _counts(array: Any) -> np.ndarray:
    """Number of elements per event of a jagged awkward array."""
    layout = ak.to_layout(array)
    if isinstance(layout, ak.contents.ListOffsetArray):
        return np.diff(np.asarray(layout.offsets.data)).astype(np.int64)
    return np.asarray(ak.to_numpy(ak.num(array, axis=1)), np.int64)


def _collection_columns(
    events: Any, spec: CollectionSpec, variation: Variation | None = None
) -> tuple[dict[str, Any], Any]:
    """The awkward columns one collection needs, and its sort key.

    Fields are taken by name (``coll["pt"]``), not as attributes: coffea's NanoEvents
    serve ``coll.pt`` through vector's Lorentz-vector behaviour, which returns the same
    branch after ~20 awkward operations (half the token-building time on a 10k-event
    chunk).
    """
    coll = events[spec.name]
    cols = {"pt": coll["pt"], "phi": coll["phi"]}
    if spec.kind != "met":
        cols["eta"] = coll["eta"]
        cols["mass"] = coll["mass"]
    if spec.has_charge:
        cols["charge"] = coll["charge"]
    btag = next((b for b in spec.btag_branches if b in coll.fields), None)
    if btag:
        cols["btag"] = coll[btag]
    for cut in spec.cuts:
        cols[f"cut:{cut.branch}"] = coll[cut.branch]
    factor = variation.factor_of(spec.name) if variation is not None else None
    if isinstance(factor, str):
        if factor not in coll.fields:
            raise MissingCollectionError(spec.name, _filename(events), [f"{spec.name}.{factor}"])
        cols["factor"] = coll[factor]
    elif factor is not None and not isinstance(factor, float):  # a per-object array
        cols["factor"] = _aligned_factors(events, spec, coll, factor)
    key = coll[spec.order_by] if spec.kind != "met" else cols["pt"]
    return cols, key


def _aligned_factors(events: Any, spec: CollectionSpec, coll: Any, factors: Any) -> Any:
    """A per-object factor array, checked to have one factor per object of ``coll``."""
    if ak.backend(coll) == "typetracer":
        return coll["pt"]  # column projection: the factors are not a column of events
    factors = ak.Array(factors) if not isinstance(factors, ak.Array) else factors
    if factors.ndim != 2 or len(factors) != len(coll):
        raise ConfigError(
            f"variation of {spec.name} in {_filename(events) or 'the input'}: per-object factors "
            f"of type {factors.type} are not one list per event of {len(coll)} events"
        )
    if not np.array_equal(_counts(factors), _counts(coll["pt"])):
        raise ConfigError(
            f"variation of {spec.name} in {_filename(events) or 'the input'}: the per-object "
            f"factors are not aligned with the collection {spec.name!r} (another number of "
            "objects in some event: factors of a selected subset of the objects?)"
        )
    return factors


class _VariationSums:
    """Per-event transverse-momentum sums a variation needs for MET, over the objects
    that pass their collection's acceptance in the nominal event: the change of the
    varied objects (type-1 propagation) and all of them (the unclustered recoil)."""

    def __init__(self, n_events: int):
        self.change = np.zeros((2, n_events))
        self.visible = np.zeros((2, n_events))

    def add(self, ev: np.ndarray, pt_before: np.ndarray, pt_after: np.ndarray, phi: np.ndarray):
        n = self.change.shape[1]
        cos, sin = np.cos(phi), np.sin(phi)
        self.visible[0] += np.bincount(ev, pt_before * cos, minlength=n)
        self.visible[1] += np.bincount(ev, pt_before * sin, minlength=n)
        if pt_after is not pt_before:
            delta = pt_after - pt_before
            self.change[0] += np.bincount(ev, delta * cos, minlength=n)
            self.change[1] += np.bincount(ev, delta * sin, minlength=n)

    def vary_met(
        self, pt: np.ndarray, phi: np.ndarray, unclustered: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """MET after the objects' change and ``1 + unclustered`` times the recoil."""
        mx, my = pt * np.cos(phi), pt * np.sin(phi)
        ux, uy = -(mx + self.visible[0]), -(my + self.visible[1])
        mx = mx - self.change[0] - unclustered * ux
        my = my - self.change[1] - unclustered * uy
        return np.hypot(mx, my), np.arctan2(my, mx)


def _acceptance(spec: CollectionSpec, flat: dict, pt, eta, finite) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        sel = finite & ((pt >= spec.min_pt) if spec.kind == "met" else (pt > spec.min_pt))
        if spec.max_abs_eta is not None:
            sel &= np.abs(eta) < spec.max_abs_eta
        for cut in spec.cuts:
            sel &= _OPS[cut.op](flat[f"cut:{cut.branch}"], cut.value)
    return sel


def _collection_objects(
    events: Any,
    spec: CollectionSpec,
    n_events: int,
    variation: Variation | None = None,
    sums: _VariationSums | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Selected objects of one collection as flat numpy arrays.

    Returns ``(columns, event_index, rank, n_nonfinite)``: the kept objects ordered
    by event and descending sort key, their event index, their rank within the event
    (< max_count) and the per-event count of objects with non-finite kinematics or a
    negative pT (dropped).
    With a ``variation``, objects are scaled before the selection and their change is
    added to ``sums`` (MET collections: varied from ``sums``; see
    :mod:`jetfm_coffea.tokens.variations`).
    """
    cols, key = _collection_columns(events, spec, variation)
    counts = np.ones(n_events, np.int64) if spec.kind == "met" else _counts(cols["pt"])
    flat = {name: _flat(col) for name, col in cols.items()}
    pt = flat["pt"].astype(np.float64)
    eta = flat["eta"].astype(np.float64) if "eta" in flat else np.zeros_like(pt)
    phi = flat["phi"].astype(np.float64)
    mass = flat["mass"].astype(np.float64) if "mass" in flat else np.zeros_like(pt)
    event_index = np.repeat(np.arange(n_events), counts)
    finite = np.isfinite(pt) & np.isfinite(eta) & np.isfinite(phi) & np.isfinite(mass)
    # a negative pT is no physical object either: dropped and counted with the non-finite
    # ones (n_nonfinite, "objects dropped" in every summary), never silently
    finite &= ~(pt < 0)
    n_nonfinite = np.bincount(event_index[~finite], minlength=n_events)
    sel = _acceptance(spec, flat, pt, eta, finite)
    if variation is not None and sums is not None:
        propagate = variation.propagates
        if spec.kind == "met" and propagate and (sums.change.any() or variation.unclustered):
            pt, phi = sums.vary_met(pt, phi, variation.unclustered)
            sel = _acceptance(spec, flat, pt, eta, finite)
        elif spec.kind != "met":
            scale = flat["factor"].astype(np.float64) if "factor" in flat else None
            scale = variation.factor_of(spec.name) if scale is None else scale
            varied = pt if scale is None else pt * scale
            sums.add(event_index[sel], pt[sel], varied[sel], phi[sel])
            if scale is not None:
                pt = varied
                mass = mass * scale if propagate else mass
                finite &= np.isfinite(pt) & np.isfinite(mass)
                sel = _acceptance(spec, flat, pt, eta, finite)
    by_pt = spec.kind == "met" or spec.order_by == "pt"  # the varied pT, when varied
    order_key = pt if by_pt else _flat(key).astype(np.float64)
    idx = np.flatnonzero(sel)
    key, ev_sel = order_key[idx], event_index[idx]
    # NanoAOD collections usually come sorted by their key already: then the (stable)
    # sort is the identity and is skipped
    same = ev_sel[1:] == ev_sel[:-1]
    if not np.isfinite(key).all() or np.any(same & (key[1:] > key[:-1])):
        idx = idx[np.lexsort((-key, ev_sel))]
    ev = event_index[idx]
    rank = _rank_within(ev, n_events)
    keep = rank < spec.max_count
    idx, ev, rank = idx[keep], ev[keep], rank[keep]
    n = len(idx)
    out = {
        "pt": pt[idx],
        "eta": eta[idx],
        "phi": phi[idx],
        "mass": mass[idx],
        "charge": flat["charge"][idx].astype(np.float64) if "charge" in flat else np.zeros(n),
        "btag": flat["btag"][idx].astype(np.float64) if "btag" in flat else np.zeros(n),
        "type_id": np.full(n, float(spec.type_id)),
    }
    return out, ev, rank, n_nonfinite


def _rank_within(event_index: np.ndarray, n_events: int) -> np.ndarray:
    """Position of each element within its event, for elements sorted by event."""
    counts = np.bincount(event_index, minlength=n_events)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(len(event_index)) - starts[event_index]


def _touch_columns(
    events: Any, specs: list[CollectionSpec], variation: Variation | None = None
) -> None:
    """Mark every column the tokens need as read (dask-awkward column projection)."""
    for spec in specs:
        cols, key = _collection_columns(events, spec, variation)
        for col in [*cols.values(), key]:
            ak.typetracer.touch_data(col)
    for name in ID_FIELDS:
        ak.typetracer.touch_data(events[name])


def select_ragged(
    events: Any, config: TokenConfig | None = None, variation: Variation | None = None
) -> RaggedObjects:
    """The selected objects of every event, ragged: what a shard stores.

    Each configured collection is selected (finite kinematics, pT, ``|eta|``, ID cuts),
    ordered by its sort key, truncated to ``max_count``; the collections are joined in
    config order (or by pT) and clipped to ``config.n_tokens`` per event. A ``variation``
    (:mod:`jetfm_coffea.tokens.variations`) scales objects before their selection and
    propagates the change to MET.
    """
    config = load_token_config(config)
    specs = check_collections(events, config)
    n_events, n_tokens = len(events), config.n_tokens
    parts, nonfinite = [], np.zeros(n_events, np.int64)
    used = np.zeros(n_events, np.int64)
    sums = _VariationSums(n_events) if variation is not None else None
    selected = {  # objects first: MET is varied from their sums
        spec.name: _collection_objects(events, spec, n_events, variation, sums)
        for spec in sorted(specs, key=lambda spec: spec.kind == "met")
    }
    for spec in specs:
        cols, ev, rank, bad = selected[spec.name]
        nonfinite += bad
        cols["slot"] = used[ev] + rank
        cols["event_index"] = ev
        used += np.bincount(ev, minlength=n_events)
        parts.append(cols)
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ev = merged["event_index"]
    if config.order == "pt":
        order = np.lexsort((-merged["pt"], ev))
        merged = {k: v[order] for k, v in merged.items()}
        ev = merged["event_index"]
        merged["slot"] = _rank_within(ev, n_events)
    keep = np.flatnonzero(merged["slot"] < n_tokens)
    ev, slot = ev.take(keep), merged["slot"].take(keep)
    # the kept slots of an event are 0 .. count-1: position = offsets[event] + slot
    offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(np.bincount(ev, minlength=n_events), out=offsets[1:])
    position = offsets[ev] + slot
    columns = {}
    for name in KINEMATICS:
        out = np.empty(len(keep), np.float32)
        out[position] = merged[name].take(keep)
        columns[name] = out
    ids = {name: np.asarray(ak.to_numpy(events[name])).astype(np.int64) for name in ID_FIELDS}
    return RaggedObjects(offsets=offsets, columns=columns, n_nonfinite=nonfinite, **ids)


def select_objects(
    events: Any, config: TokenConfig | None = None, variation: Variation | None = None
) -> EventObjects:
    """Padded per-event object kinematics as numpy arrays ``[N, T]`` (see :func:`select_ragged`)."""
    config = load_token_config(config)
    return select_ragged(events, config, variation).padded(config.n_tokens)


@dataclass
class RaggedObjects:
    """Selected objects, ragged: ``offsets [N + 1]``, float32 ``columns`` (:data:`KINEMATICS`)."""

    offsets: np.ndarray
    columns: dict[str, np.ndarray]
    run: np.ndarray
    luminosityBlock: np.ndarray
    event: np.ndarray
    n_nonfinite: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, index: np.ndarray) -> RaggedObjects:
        """The events at ``index`` (integer positions or a boolean mask), still ragged."""
        index = np.arange(len(self))[index]
        counts = np.diff(self.offsets)[index]
        offsets = np.zeros(len(index) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        starts = self.offsets[:-1][index]
        elements = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        return RaggedObjects(
            offsets=offsets,
            columns={k: v[elements] for k, v in self.columns.items()},
            run=self.run[index],
            luminosityBlock=self.luminosityBlock[index],
            event=self.event[index],
            n_nonfinite=self.n_nonfinite[index],
        )

    def padded(self, n_tokens: int) -> EventObjects:
        """The same objects padded to ``[N, n_tokens]`` (slots beyond the count: zero, masked)."""
        n = len(self)
        counts = np.diff(self.offsets)
        if counts.size and counts.max() > n_tokens:
            raise ValueError(f"an event has {counts.max()} objects, more than {n_tokens} tokens")
        ev = np.repeat(np.arange(n), counts)
        target = ev * n_tokens + (np.arange(len(ev)) - self.offsets[:-1].repeat(counts))
        mask = np.zeros(n * n_tokens, bool)
        mask[target] = True
        padded = {}
        for name in KINEMATICS:
            arr = np.zeros(n * n_tokens, np.float32)
            arr[target] = self.columns[name]
            padded[name] = arr.reshape(n, n_tokens)
        return EventObjects(
            **padded,
            mask=mask.reshape(n, n_tokens),
            run=self.run,
            luminosityBlock=self.luminosityBlock,
            event=self.event,
            n_nonfinite=self.n_nonfinite,
        )


@dataclass
class EventObjects:
    """Padded object kinematics ``[N, T]`` (float32), the mask, event ids and NaN counts."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    btag: np.ndarray
    type_id: np.ndarray
    mask: np.ndarray
    run: np.ndarray
    luminosityBlock: np.ndarray
    event: np.ndarray
    n_nonfinite: np.ndarray

    def __len__(self) -> int:
        return len(self.mask)

    def take(self, index: np.ndarray) -> EventObjects:
        """The events at ``index`` (integer positions or a boolean mask)."""
        return EventObjects(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class EventTokens:
    """Token tensors of a batch of events, with their ids and object kinematics."""

    tokens: np.ndarray  # [N, T, F] float32
    mask: np.ndarray  # [N, T] bool
    run: np.ndarray  # [N] int64
    luminosityBlock: np.ndarray
    event: np.ndarray  # [N] int64
    n_nonfinite: np.ndarray  # [N] objects or tokens dropped for NaN/inf
    feature_names: list[str]
    objects: EventObjects = field(repr=False)

    def __len__(self) -> int:
        return len(self.mask)

    @property
    def counts(self) -> np.ndarray:
        """Number of valid tokens per event."""
        return self.mask.sum(axis=1)

    def take(self, index: np.ndarray) -> EventTokens:
        """The events at ``index`` (integer positions or a boolean mask)."""
        return EventTokens.from_parts(
            self.tokens[index], self.objects.take(index), self.feature_names
        )

    @classmethod
    def from_parts(
        cls, tokens: np.ndarray, objects: EventObjects, feature_names: list[str]
    ) -> EventTokens:
        """Tokens ``[N, T, F]`` with the mask, ids and NaN counts of their ``objects``."""
        return cls(
            tokens=tokens,
            mask=objects.mask,
            run=objects.run,
            luminosityBlock=objects.luminosityBlock,
            event=objects.event,
            n_nonfinite=objects.n_nonfinite,
            feature_names=feature_names,
            objects=objects,
        )

    @classmethod
    def from_objects(cls, objects: EventObjects, config: TokenConfig) -> EventTokens:
        """Compute the features of padded objects (after augmentation, for instance)."""
        tokens, mask, bad = tokens_from_objects(objects, config)
        objects = replace(objects, mask=mask, n_nonfinite=objects.n_nonfinite + bad)
        return cls.from_parts(tokens, objects, config.feature_names)

    @classmethod
    def from_awkward(cls, record: ak.Array, config: TokenConfig | None = None) -> EventTokens:
        """Convert a computed :func:`token_record` array back into numpy arrays."""
        config = load_token_config(config)
        n, t, f = len(record), config.n_tokens, len(config.features)
        cols = {name: np.asarray(ak.to_numpy(record[name])) for name in record.fields}
        objects = EventObjects(**{k: v for k, v in cols.items() if k != "tokens"})
        tokens = cols["tokens"].reshape(n, t, f).astype(np.float32, copy=False)
        return cls.from_parts(tokens, objects, config.feature_names)

    def to_awkward(self) -> ak.Array:
        """One record per event (the inverse of :meth:`from_awkward`)."""
        n = len(self)
        out = {"tokens": self.tokens.reshape(n, self.tokens.shape[1] * self.tokens.shape[2])}
        out.update({f.name: getattr(self.objects, f.name) for f in fields(EventObjects)})
        return ak.zip(
            {k: ak.from_numpy(v, regulararray=True) for k, v in out.items()}, depth_limit=1
        )


def tokens_from_objects(
    objects: EventObjects, config: TokenConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features for numpy object kinematics: ``(tokens, mask, n_nonfinite)``.

    The kernel runs on the valid tokens only (float64), then scatters into the padded
    ``[N, T, F]`` float32 array; padding stays exactly zero.
    """
    shape = objects.mask.shape
    index = np.flatnonzero(objects.mask)  # 1-d positions: faster than 2-d fancy indexing
    take = {
        name: np.asarray(getattr(objects, name)).reshape(-1).take(index).astype(np.float64)
        for name in KINEMATICS
    }
    feats, valid, _ = compute_features(
        np, config.feature_names, **take, mask=np.ones(len(index), bool)
    )
    tokens = np.zeros((shape[0] * shape[1], len(config.features)), np.float32)
    tokens[index] = feats
    mask = objects.mask.copy()
    bad = index[~valid]
    mask.reshape(-1)[bad] = False
    n_bad = np.bincount(bad // max(shape[1], 1), minlength=shape[0])
    return tokens.reshape(*shape, len(config.features)), mask, n_bad


def _empty_tokens(config: TokenConfig) -> EventTokens:
    t = config.n_tokens
    z = np.zeros((0, t), np.float32)
    i = np.zeros(0, np.int64)
    objects = EventObjects(z, z, z, z, z, z, z, np.zeros((0, t), bool), i, i, i, i)
    return EventTokens.from_objects(objects, config)


def _record_partition(
    events: ak.Array, config: TokenConfig, variation: Variation | None = None
) -> ak.Array:
    """One partition's tokens as a record array; on a typetracer, only touch the inputs."""
    if ak.backend(events) == "typetracer":
        _touch_columns(events, check_collections(events, config), variation)
        empty = _empty_tokens(config).to_awkward()
        return ak.Array(empty.layout.to_typetracer(forget_length=True))
    objects = select_objects(events, config, variation)
    return EventTokens.from_objects(objects, config).to_awkward()


def token_record(
    events: Any, config: TokenConfig | None = None, variation: Variation | None = None
) -> Any:
    """Tokens as an awkward record array, one record per event; lazy for dask-awkward.

    Fields: ``tokens`` (``[N, T*F]`` float32) and every field of :class:`EventObjects`.
    """
    config = load_token_config(config)
    if _is_dask(events):
        import dask_awkward as dak

        check_collections(events, config)
        if variation is not None and variation.has_arrays():
            raise ConfigError(
                "a variation with per-object factor arrays needs eager or virtual events; in "
                "dask mode assign the factors as a field of the collection "
                "(events['Jet', 'pt_up'] = ...) and name the field"
            )
        return dak.map_partitions(
            _record_partition, events, config=config, variation=variation, label="jetfm-tokens"
        )
    return _record_partition(events, config, variation)


def build_tokens(
    events: Any,
    config: TokenConfig | str | dict | None = None,
    variation: Variation | None = None,
) -> Any:
    """Turn events into tokens: the single path used by shards, inspection and scoring.

    Eager or virtual NanoEvents give :class:`EventTokens`; dask-awkward NanoEvents give
    the lazy :func:`token_record`, which computes to the identical numbers
    (:meth:`EventTokens.from_awkward` turns it back into :class:`EventTokens`). A
    ``variation`` gives the tokens of systematically varied inputs
    (:mod:`jetfm_coffea.tokens.variations`).
    """
    config = load_token_config(config)
    if _is_dask(events):
        return token_record(events, config, variation)
    return EventTokens.from_objects(select_objects(events, config, variation), config)


def _is_dask(array: Any) -> bool:
    return type(array).__module__.startswith("dask_awkward")
