"""The pretraining data sheet: what a store (and a model pretrained on it) saw.

Built from a store's manifest alone (each shard entry carries its ``selection``
provenance): datasets with their Open Data record ids, events per dataset, the runs and
luminosity sections of collision data, golden JSON names and sha256, the blinded
regions, the augmentation pipeline and a store checksum. The catalogue has no per-run
luminosity figures, so collision data are reported in luminosity sections (an
integrated luminosity needs brilcalc on the listed sections).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.selection.blinding import BlindingConfig
from jetfm_coffea.selection.lumi import merge_lumi_ranges

__all__ = [
    "UnblindedModelError",
    "UnblindedModelWarning",
    "check_model_blinding",
    "data_sheet",
    "data_sheet_markdown",
    "entries_data_sheet",
    "format_data_sheet",
    "selection_by_dataset",
    "source_data_sheet",
    "store_checksum",
    "unblinded_regions",
]


def _empty(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "record_ids": None,
        "events": 0,
        "events_read": 0,
        "golden_json": {},
        "lumi_mask_disabled": False,
        "certified": None,
        "blinding": None,
    }


def selection_by_dataset(shards: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dataset: events written and read, golden JSONs, runs and sections, blinding.

    ``shards`` are store-manifest entries (``dataset``, ``n_events``, ``selection``).
    Shards written before selections were recorded count as kind ``"unknown"``.
    """
    out: dict[str, dict[str, Any]] = {}
    sections: dict[str, list[Mapping[str, Any]]] = {}
    uncertified: dict[str, list[Mapping[str, Any]]] = {}
    for shard in shards:
        sel = shard.get("selection") or {}
        ds = out.setdefault(shard["dataset"], _empty(sel.get("kind", "unknown")))
        ds["events"] += int(shard["n_events"])
        ds["events_read"] += int(sel.get("events_read", shard["n_events"]))
        ds["record_ids"] = sel.get("record_ids", ds["record_ids"])
        ds["lumi_mask_disabled"] |= bool(sel.get("disabled", False))
        if sel.get("lumi_mask"):
            ds["golden_json"][sel["lumi_mask"]["golden_json"]] = sel["lumi_mask"]["sha256"]
        cert = sel.get("certified")
        if cert:
            acc = ds["certified"] or {"events_kept": 0, "events_dropped": 0, "runs_dropped": []}
            for key in ("events_kept", "events_dropped"):
                acc[key] += int(cert[key])
            acc["runs_dropped"] = sorted(set(acc["runs_dropped"]) | set(cert["runs_dropped"]))
            ds["certified"] = acc
            sections.setdefault(shard["dataset"], []).append(cert["lumisections"])
            uncertified.setdefault(shard["dataset"], []).append(
                cert.get("lumisections_uncertified", {})
            )
        blind = sel.get("blinding")
        if blind:
            acc = ds["blinding"] or {"hash": blind["hash"], "regions": {}, "events_removed": 0}
            acc["events_removed"] += int(blind["events_removed"])
            for name, n in blind["regions"].items():
                acc["regions"][name] = acc["regions"].get(name, 0) + int(n)
            ds["blinding"] = acc
    for name, parts in sections.items():
        merged = merge_lumi_ranges(*parts)
        cert = out[name]["certified"]
        cert["runs"] = sorted(int(r) for r in merged)
        cert["lumisections_kept"] = sum(b - a + 1 for s in merged.values() for a, b in s)
        cert["lumisections"] = merged
        dropped = merge_lumi_ranges(*uncertified[name])
        cert["lumisections_dropped"] = sum(b - a + 1 for s in dropped.values() for a, b in s)
    return out


def store_checksum(shards: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the sorted (path, content checksum) of every shard: the store's content."""
    digest = hashlib.sha256()
    for path, checksum in sorted((s["path"], s["checksum"]) for s in shards):
        digest.update(f"{path}\0{checksum}\n".encode())
    return digest.hexdigest()


def data_sheet(manifest: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
    """The data sheet of a store from its manifest and description (``store.json``)."""
    shards = manifest["shards"]
    return entries_data_sheet(
        shards,
        n_shards=int(manifest["n_shards"]),
        checksum=store_checksum(shards),
        augmentation=description.get("augmentation") or {},
        token_config_hash=description.get("token_config_hash"),
    )


def entries_data_sheet(
    entries: Iterable[Mapping[str, Any]],
    *,
    n_shards: int = 0,
    checksum: str | None = None,
    augmentation: Mapping[str, Any] | None = None,
    token_config_hash: str | None = None,
) -> dict[str, Any]:
    """The data sheet of ``entries`` (``dataset``, ``n_events``, ``selection``): the shards
    of a store, or the files of tokens read straight from NanoAOD (``pretrain --events``:
    no store, so no shards, store checksum or stored-view pipeline)."""
    entries = list(entries)
    datasets = selection_by_dataset(entries)
    golden = {n: h for ds in datasets.values() for n, h in ds["golden_json"].items()}
    blinding: dict[str, Any] = {}
    for entry in entries:
        blind = (entry.get("selection") or {}).get("blinding")
        if blind:
            blinding.setdefault(blind["hash"], blind["config"])
    augmentation = augmentation or {}
    return {
        "n_events": sum(int(e["n_events"]) for e in entries),
        "n_shards": n_shards,
        "store_checksum": checksum,
        "datasets": datasets,
        "golden_json": golden,
        "luminosity_unit": "lumi sections (the catalogue has no per-run luminosity)",
        "blinding": blinding,
        "augmentation": {
            "hash": augmentation.get("hash"),
            "seed": augmentation.get("seed"),
            "n_views": augmentation.get("n_views"),
            "steps": [s.get("name") for s in (augmentation.get("pipeline") or {}).get("steps", [])],
        },
        "token_config_hash": token_config_hash,
    }


def format_data_sheet(sheet: Mapping[str, Any]) -> list[str]:
    """The data sheet as Markdown lines (for MODEL_CARD.md and ``jetfm shards info``)."""
    if sheet["store_checksum"]:
        where = f"in {sheet['n_shards']} shards; store checksum `{sheet['store_checksum'][:16]}`"
    else:
        where = "read straight from NanoAOD (no shard store)"
    lines = [f"- events: {sheet['n_events']:,} {where}"]
    for name, ds in sheet["datasets"].items():
        recs = f" (records {', '.join(map(str, ds['record_ids']))})" if ds["record_ids"] else ""
        line = f"- dataset `{name}`{recs}: {ds['kind']}, {ds['events']:,} events"
        if ds["events_read"] != ds["events"]:
            line += f" of {ds['events_read']:,} read"
        cert = ds["certified"]
        if cert:
            runs = cert["runs"]
            shown = ", ".join(map(str, runs[:10])) + (" ..." if len(runs) > 10 else "")
            line += (
                f"; certified: {cert['lumisections_kept']:,} lumi sections in "
                f"{len(runs)} runs ({shown}), {cert['events_dropped']:,} events in "
                f"{cert['lumisections_dropped']:,} uncertified sections dropped"
            )
        if ds["lumi_mask_disabled"]:
            line += "; NO certified-luminosity mask (--no-lumi-mask)"
        if ds["blinding"]:
            regions = ", ".join(f"{k} {v:,}" for k, v in ds["blinding"]["regions"].items())
            line += f"; blinded: {ds['blinding']['events_removed']:,} events removed ({regions})"
        lines.append(line)
    for name, sha in sheet["golden_json"].items():
        lines.append(f"- golden JSON `{name}` sha256 `{sha}`")
    if sheet["blinding"]:
        for digest, config in sheet["blinding"].items():
            names = ", ".join(r["name"] for r in config["regions"])
            mc = "data and simulation" if config.get("apply_to_mc") else "collision data"
            lines.append(f"- blinded regions ({mc}, hash `{digest}`): {names}")
    else:
        lines.append("- blinded regions: none")
    aug = sheet["augmentation"]
    if aug.get("hash"):
        steps = ", ".join(s for s in aug["steps"] if s) or "none"
        lines.append(
            f"- stored views: {steps} ({aug['n_views']} views, seed {aug['seed']}, "
            f"hash `{aug['hash']}`)"
        )
    else:
        lines.append("- stored views: none")
    return lines


def data_sheet_markdown(sheet: Mapping[str, Any] | None) -> str:
    """The MODEL_CARD.md section body of a run's data sheet (or why there is none)."""
    if sheet is None:
        return "- none recorded (pretrained straight from NanoAOD, or no pretraining)"
    return "\n".join(format_data_sheet(sheet))


def source_data_sheet(source: Any) -> dict[str, Any] | None:
    """The data sheet of a pretraining batch source read from a shard store, else None.

    A shard loader exposes its opened store (``loader.dataset.store``: manifest and
    description); tokens built straight from NanoAOD (``--events``) carry their own
    (:func:`entries_data_sheet`, ``source.data_sheet``).
    """
    if getattr(source, "data_sheet", None) is not None:
        return dict(source.data_sheet)
    store = getattr(source, "store", None) or getattr(
        getattr(source, "dataset", None), "store", None
    )
    manifest, description = getattr(store, "manifest", None), getattr(store, "description", None)
    if manifest is None or description is None:
        return None
    return data_sheet(manifest, description)


def _definition(region: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in region.items() if k != "name"}, sort_keys=True)


def unblinded_regions(sheet: Mapping[str, Any] | None, analysis: BlindingConfig) -> list[str]:
    """The analysis regions the pretraining data were NOT blinded for.

    A region counts as blinded when a region with the same definition (its name aside)
    was removed from every dataset of the sheet that is not simulation. Pretraining on
    simulation only needs no blinding; a model without a data sheet (pretrained
    straight from NanoAOD, or before data sheets existed) is blinded for nothing.
    """
    wanted = {
        r.name: _definition(r.model_dump(mode="json", exclude_none=True)) for r in analysis.regions
    }
    if sheet is None:
        return list(wanted)
    real = [ds for ds in sheet["datasets"].values() if ds["kind"] != "mc"]
    out = []
    for name, definition in wanted.items():
        for ds in real:
            blind = ds.get("blinding")
            config = (sheet.get("blinding") or {}).get(blind["hash"]) if blind else None
            defs = {_definition(r) for r in (config or {}).get("regions", [])}
            if definition not in defs:
                out.append(name)
                break
    return out


class UnblindedModelWarning(UserWarning):
    """A model scores collision data in a region its pretraining data were not blinded for."""


class UnblindedModelError(ConfigError):
    """The same, as an error (``--require-blinded``)."""


def check_model_blinding(
    sheets: Mapping[str, Mapping[str, Any] | None],
    analysis: BlindingConfig,
    *,
    require: bool = False,
) -> list[str]:
    """Warn (or raise with ``require``) for each model not blinded for the analysis regions.

    ``sheets``: model (as named in the messages) -> its data sheet, None where it has none
    (:func:`jetfm_coffea.model.rundir.read_data_sheet` reads one from a model folder).
    Returns the messages. Call it when the scored data include collision data.
    """
    messages = []
    for run, sheet in sheets.items():
        missing = unblinded_regions(sheet, analysis)
        if missing:
            why = "has no pretraining data sheet" if sheet is None else "was pretrained on"
            detail = "" if sheet is None else " collision data that still contained"
            messages.append(
                f"model {run} {why}{detail} the analysis region(s) {', '.join(missing)}: "
                "its scores may be biased in them (build the pretraining shards with "
                "--blind for these regions)"
            )
    if messages and require:
        raise UnblindedModelError("; ".join(messages))
    for message in messages:
        warnings.warn(message, UnblindedModelWarning, stacklevel=2)
    return messages
