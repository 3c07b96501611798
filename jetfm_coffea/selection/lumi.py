"""Certified luminosity in every processor: which datasets are masked, with what, and counts.

The kind of a dataset comes from its fileset metadata, as everywhere in the package:
``is_mc: true`` / ``is_data: false`` is simulation (never masked), ``is_mc: false`` /
``is_data: true`` is collision data, which must carry a golden JSON (``golden_json``:
a shipped name or a file path; catalogue filesets have it) unless the mask was
explicitly switched off (``lumi_mask_disabled: true``, recorded). A dataset that
declares neither is masked only when a golden JSON is given for it.

The client resolves the masks once (:func:`resolve_lumi_masks`: the ``--lumi-mask`` /
``--no-lumi-mask`` options, every golden JSON parsed and checked); each processor then
calls :func:`certify` on its events before anything else, in virtual and dask mode.
The mask logic itself (coffea's ``LumiMask``) is :mod:`jetfm_coffea.opendata.lumimask`.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import awkward as ak
import numpy as np

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.opendata.lumimask import (
    golden_json_path,
    load_lumimask,
    lumimask_for,
    lumimask_provenance,
)

__all__ = [
    "CERTIFIED_LUMI",
    "DISABLED_KEY",
    "LumiMaskWarning",
    "LumiPolicy",
    "MissingLumiMaskError",
    "certified",
    "certify",
    "certify_chunk",
    "lumi_summary",
    "merge_lumi_ranges",
    "resolve_lumi_masks",
    "run_lumi_summary",
    "warn_if_all_removed",
]

#: Cutflow line: events left after the certified-luminosity mask.
CERTIFIED_LUMI = "certified_lumi"
#: Metadata key recording that the mask was switched off on purpose (``--no-lumi-mask``).
DISABLED_KEY = "lumi_mask_disabled"

Kind = Literal["mc", "data", "undeclared"]


class MissingLumiMaskError(ConfigError):
    """Collision data without a golden JSON, and the mask was not switched off explicitly."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        super().__init__(
            f"dataset {dataset!r} is collision data (fileset metadata) but has no golden JSON: "
            "give one with --lumi-mask FILE (or lumi_mask=...), or put 'golden_json' in the "
            "dataset's fileset metadata (catalogue filesets carry it); --no-lumi-mask "
            "processes uncertified luminosity sections on purpose"
        )


class LumiMaskWarning(UserWarning):
    """A certified-luminosity mask removed every event of a dataset (or shard)."""


def _kind(metadata: Mapping[str, Any], dataset: str) -> Kind:
    is_mc, is_data = metadata.get("is_mc"), metadata.get("is_data")
    if is_mc is not None and is_data is not None and bool(is_mc) == bool(is_data):
        raise ConfigError(
            f"dataset {dataset!r}: fileset metadata says is_mc={is_mc} and is_data={is_data}"
        )
    if is_mc is True or is_data is False:
        return "mc"
    if is_mc is False or is_data is True:
        return "data"
    return "undeclared"


@dataclass(frozen=True)
class LumiPolicy:
    """What to do with one dataset's luminosity sections."""

    dataset: str
    kind: Kind
    golden_json: str | None = None
    disabled: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> LumiPolicy:
        """The policy of a dataset from its (resolved) fileset metadata.

        Raises :class:`MissingLumiMaskError` for collision data with no golden JSON
        that was not explicitly exempted.
        """
        meta = dict(metadata or {})
        dataset = str(meta.get("dataset", "dataset"))
        kind = _kind(meta, dataset)
        disabled = bool(meta.get(DISABLED_KEY, False))
        golden = meta.get("golden_json")
        if kind == "mc" or disabled:
            return cls(dataset, kind, None, disabled and kind != "mc")
        if golden is None and kind == "data":
            raise MissingLumiMaskError(dataset)
        return cls(dataset, kind, None if golden is None else os.fspath(golden))

    @property
    def masked(self) -> bool:
        return self.golden_json is not None

    def provenance(self) -> dict[str, Any]:
        """``{"kind", "lumi_mask": {golden_json, sha256, record_id} | None, "disabled"}``."""
        return {
            "kind": self.kind,
            "lumi_mask": lumimask_provenance(self.golden_json),
            "disabled": self.disabled,
        }


def resolve_lumi_masks(
    fileset: Mapping[str, Any],
    lumi_mask: str | os.PathLike[str] | None = None,
    no_lumi_mask: bool = False,
) -> dict[str, Any]:
    """A copy of a (loaded) fileset whose metadata say how each dataset is masked.

    ``lumi_mask`` replaces the golden JSON of every dataset that is not simulation;
    ``no_lumi_mask`` switches masking off for collision data (recorded as
    ``lumi_mask_disabled``). Every golden JSON is resolved and parsed here, on the
    client, so a bad file fails before any work is scheduled; collision data with no
    mask raise :class:`MissingLumiMaskError`.
    """
    if lumi_mask is not None and no_lumi_mask:
        raise ConfigError("--lumi-mask and --no-lumi-mask exclude each other")
    out = copy.deepcopy(dict(fileset))
    for name, spec in out.items():
        meta = spec.setdefault("metadata", {})
        if meta is None:
            meta = spec["metadata"] = {}
        if _kind(meta, name) == "mc":
            continue
        if no_lumi_mask:
            meta[DISABLED_KEY] = True
            meta.pop("golden_json", None)
            continue
        if lumi_mask is not None:
            meta["golden_json"] = str(golden_json_path(lumi_mask))
        policy = LumiPolicy.from_metadata({**meta, "dataset": name})
        if policy.masked:
            load_lumimask(policy.golden_json)  # parse and check the file now
            meta["golden_json_sha256"] = lumimask_provenance(policy.golden_json)["sha256"]
    return out


def _is_dask(events: Any) -> bool:
    return type(events).__module__.startswith("dask_awkward")


def certify(events: Any) -> tuple[Any, dict[str, Any]]:
    """Apply the dataset's golden JSON to ``events``: ``(kept events, cutflow lines)``.

    The first thing a processor does. Simulation and exempted data come back unchanged
    with no cutflow line; collision data give the certified events and
    ``{"events": read, "certified_lumi": kept}`` (lazy for dask-awkward events).
    """
    policy = LumiPolicy.from_metadata(events.metadata)
    if not policy.masked:
        return events, {}
    keep = lumimask_for(events, policy.golden_json)
    if _is_dask(events):
        import dask_awkward as dak

        lines = {"events": dak.num(keep, axis=0), CERTIFIED_LUMI: dak.sum(keep, axis=0)}
        return events[keep], lines
    keep_np = np.asarray(ak.to_numpy(keep), bool)
    return events[keep], {"events": len(keep_np), CERTIFIED_LUMI: int(keep_np.sum())}


def certify_chunk(events: Any, policy: LumiPolicy) -> tuple[Any, dict[str, Any] | None]:
    """Eager/virtual events of one chunk: ``(certified events, lumi_summary or None)``."""
    if not policy.masked:
        return events, None
    summary, keep = run_lumi_summary(events, policy)
    return events[keep], summary


def run_lumi_summary(ids: Any, policy: LumiPolicy) -> tuple[dict[str, Any], np.ndarray]:
    """``(lumi_summary, keep)`` of records with ``run`` and ``luminosityBlock`` fields."""
    run = np.asarray(ak.to_numpy(ids["run"]))
    lumi = np.asarray(ak.to_numpy(ids["luminosityBlock"]))
    keep = certified(str(policy.golden_json), run, lumi)
    return lumi_summary(run, lumi, keep), keep


def certified(golden_json: str, run: np.ndarray, lumi: np.ndarray) -> np.ndarray:
    """Boolean numpy mask of the certified (run, luminosityBlock) pairs."""
    mask = load_lumimask(golden_json)
    return np.asarray(mask(np.asarray(run, np.uint32), np.asarray(lumi, np.uint32)), bool)


def _ranges(run: np.ndarray, lumi: np.ndarray) -> dict[str, list[list[int]]]:
    """Distinct (run, lumi) pairs as golden-JSON style ``{run: [[first, last], ...]}``."""
    out: dict[str, list[list[int]]] = {}
    if len(run) == 0:
        return out
    pairs = np.unique(np.stack([run.astype(np.int64), lumi.astype(np.int64)], axis=1), axis=0)
    for r in np.unique(pairs[:, 0]):
        ls = pairs[pairs[:, 0] == r, 1]
        breaks = np.flatnonzero(np.diff(ls) != 1)
        starts = np.concatenate([[0], breaks + 1])
        stops = np.concatenate([breaks, [len(ls) - 1]])
        out[str(int(r))] = [[int(ls[a]), int(ls[b])] for a, b in zip(starts, stops, strict=True)]
    return out


def _count(ranges: Mapping[str, list[list[int]]]) -> int:
    return sum(b - a + 1 for spans in ranges.values() for a, b in spans)


def merge_lumi_ranges(*parts: Mapping[str, list[list[int]]]) -> dict[str, list[list[int]]]:
    """Union of golden-JSON style range sets (e.g. the certified sections of many shards)."""
    runs, lumis = [], []
    for part in parts:
        for r, spans in part.items():
            for a, b in spans:
                lumis.append(np.arange(a, b + 1))
                runs.append(np.full(b - a + 1, int(r)))
    if not runs:
        return {}
    return _ranges(np.concatenate(runs), np.concatenate(lumis))


def lumi_summary(run: np.ndarray, lumi: np.ndarray, keep: np.ndarray) -> dict[str, Any]:
    """Events and luminosity sections kept and dropped by a mask, for shard provenance.

    ``lumisections`` lists the kept sections as ``{run: [[first, last], ...]}`` (the
    golden-JSON form), ``lumisections_uncertified`` the dropped ones, so the data sheet
    of a store can add them up over shards (a section may span two shards).
    """
    run, lumi, keep = np.asarray(run), np.asarray(lumi), np.asarray(keep, bool)
    kept = _ranges(run[keep], lumi[keep])
    dropped = _ranges(run[~keep], lumi[~keep])
    return {
        "events_kept": int(keep.sum()),
        "events_dropped": int((~keep).sum()),
        "lumisections_kept": _count(kept),
        "lumisections_dropped": _count(dropped),
        "runs_dropped": sorted(int(r) for r in dropped),
        "lumisections": kept,
        "lumisections_uncertified": dropped,
    }


def warn_if_all_removed(
    dataset: str, events_in: int, events_kept: int, runs: list[int] | None = None
) -> None:
    """Warn (:class:`LumiMaskWarning`) when a mask removed every event of a dataset."""
    if events_in > 0 and events_kept == 0:
        listed = f" (runs {', '.join(map(str, runs))})" if runs else ""
        warnings.warn(
            f"dataset {dataset!r}: the certified-luminosity mask removed every one of its "
            f"{events_in} events: it certifies none of their runs and luminosity sections"
            f"{listed} (a golden JSON of another era?)",
            LumiMaskWarning,
            stacklevel=2,
        )
