"""Verify a shard store: list every problem, each naming its shard; never delete anything.

:func:`verify` checks the store root, every shard on disk
(:func:`~jetfm_coffea.shards.shard.shard_problems`), the manifest against the shards,
overlapping entry ranges, the same input file in two datasets, duplicate event ids
within a dataset and leftover temporary directories; with ``rebuild_manifest`` it
writes a new manifest from the shards that passed (``jetfm shards verify
[--rebuild-manifest]``).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.errors import SchemaValidationError, SchemaVersionError, ShardError
from jetfm_coffea.shards.format import ID_ARRAYS, MANIFEST_NAME, shard_path
from jetfm_coffea.shards.shard import (
    Problem,
    open_shard,
    read_shard_json,
    shard_problems,
    validate_document,
)
from jetfm_coffea.shards.store import (
    ShardRecord,
    read_store_description,
    scan_shards,
    scan_temporaries,
    write_manifest,
)

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`: every problem, and what was checked."""

    store: str
    n_shards: int = 0
    n_events: int = 0
    problems: list[Problem] = field(default_factory=list)
    manifest_rebuilt: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def verify(
    store: str | Path, *, rebuild_manifest: bool = False, check_content: bool = True
) -> VerifyReport:
    """Check a store and list every problem; never deletes or changes shards.

    Checks: store root schema; each shard's schema version and attributes, array shapes,
    counts, content checksum, token config; the manifest against the shards on disk
    (missing, unlisted, differing counts/checksums); overlapping entry ranges of one file;
    the same input file (uuid) in two datasets; duplicate (run, luminosityBlock, event)
    within a dataset (``check_content``; a warning for simulation); leftover temporary
    directories (warnings). With ``rebuild_manifest`` a new manifest
    is written from the shards that passed, beside the old one and then renamed onto it
    (a failed write, e.g. a full disk, leaves the old manifest in place); the old one
    is kept as ``manifest.json.bak-*``.
    """
    root = Path(store)
    report = VerifyReport(str(root))
    try:
        description = read_store_description(root)
    except ShardError as err:
        report.problems.append(Problem("schema", str(root), err.reason))
        return report
    except SchemaValidationError as err:
        report.problems.append(Problem("schema", str(root), str(err)))
        return report

    on_disk = scan_shards(root)
    good: dict[str, ShardRecord] = {}
    for path in on_disk:
        try:
            shard = open_shard(root, path)
        except SchemaVersionError as err:
            report.problems.append(Problem("schema", path, err.reason))
            continue
        except SchemaValidationError as err:
            report.problems.append(Problem("schema", path, str(err)))
            continue
        except ShardError as err:
            report.problems.append(Problem("unreadable", path, err.reason))
            continue
        if shard.attrs["token_config_hash"] != description["token_config_hash"]:
            report.problems.append(
                Problem(
                    "config",
                    path,
                    f"token config {shard.attrs['token_config_hash']} differs from the "
                    f"store's {description['token_config_hash']}",
                )
            )
            continue
        src = shard.attrs["source"]
        expected = shard_path(
            shard.attrs["dataset"], src["uuid"], src["entry_start"], src["entry_stop"]
        )
        if expected != path:
            report.problems.append(
                Problem("path", path, f"attributes describe {expected} (moved or copied shard)")
            )
            continue
        problems = shard_problems(shard) if check_content else []
        report.problems.extend(problems)
        if not problems:
            good[path] = ShardRecord.from_shard(shard)

    # overlapping entry ranges of one input file would duplicate events
    by_file: dict[tuple[str, str], list[ShardRecord]] = defaultdict(list)
    for rec in good.values():
        by_file[(rec.dataset, rec.source_uuid)].append(rec)
    for recs in by_file.values():
        recs.sort(key=lambda r: (r.entry_start, r.entry_stop))
        for a, b in itertools.pairwise(recs):
            if b.entry_start < a.entry_stop:
                report.problems.append(
                    Problem("overlap", b.path, f"entry range overlaps {a.path} (duplicate events)")
                )

    report.problems.extend(_duplicate_inputs(good))
    if check_content:
        report.problems.extend(_duplicate_events(root, good))

    manifest_path = root / MANIFEST_NAME
    listed: dict[str, dict[str, Any]] = {}
    manifest_ok = False
    if not manifest_path.is_file():
        report.problems.append(Problem("manifest", MANIFEST_NAME, "missing"))
    else:
        try:
            manifest = read_shard_json(manifest_path)
            validate_document(manifest, "store_manifest", MANIFEST_NAME)
            listed = {s["path"]: s for s in manifest["shards"]}
            manifest_ok = True
            if manifest["n_events"] != sum(s["n_events"] for s in manifest["shards"]):
                report.problems.append(
                    Problem("manifest", MANIFEST_NAME, "n_events is not the sum over shards")
                )
        except SchemaVersionError as err:
            report.problems.append(Problem("schema", MANIFEST_NAME, err.reason))
        except (ValueError, SchemaValidationError) as err:
            report.problems.append(Problem("manifest", MANIFEST_NAME, f"invalid: {err}"))
    disk = set(on_disk)
    for path, entry in listed.items():
        if path not in disk:
            report.problems.append(
                Problem("missing", path, "listed in the manifest but not on disk")
            )
        elif path in good:
            rec = good[path]
            if entry["n_events"] != rec.n_events or entry["checksum"] != rec.checksum:
                report.problems.append(
                    Problem(
                        "manifest",
                        path,
                        f"manifest says {entry['n_events']} events / {entry['checksum'][:16]}..., "
                        f"shard has {rec.n_events} / {rec.checksum[:16]}...",
                    )
                )
    if manifest_ok:
        for path in on_disk:
            if path not in listed:
                report.problems.append(Problem("unlisted", path, "on disk but not in the manifest"))
    for tmp in scan_temporaries(root):
        report.problems.append(
            Problem(
                "temporary",
                tmp,
                "leftover of an interrupted write (not a shard; safe to remove by hand)",
                "warning",
            )
        )
    report.n_shards = len(good)
    report.n_events = sum(r.n_events for r in good.values())
    if rebuild_manifest:
        backup = _keep_old_manifest(manifest_path)
        try:  # written beside, then renamed onto manifest.json: the old one stays until then
            write_manifest(root, sorted(good))
        except BaseException:
            if backup is not None:
                backup.unlink(missing_ok=True)  # manifest.json is still the old one
            raise
        report.manifest_rebuilt = True
    return report


def _keep_old_manifest(manifest_path: Path) -> Path | None:
    """A ``manifest.json.bak-<time>`` beside the manifest, which stays in place.

    A hard link (no disk space needed) where the file system has them, else a copy.
    """
    if not manifest_path.is_file():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = manifest_path.with_name(f"{MANIFEST_NAME}.bak-{stamp}")
    backup.unlink(missing_ok=True)
    try:
        os.link(manifest_path, backup)
    except OSError:
        try:
            shutil.copy2(manifest_path, backup)
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
    return backup


def _duplicate_inputs(good: dict[str, ShardRecord]) -> list[Problem]:
    """The same input file (ROOT uuid) in two datasets: its events are stored twice."""
    datasets: dict[str, dict[str, str]] = defaultdict(dict)
    for rec in good.values():
        datasets[rec.source_uuid].setdefault(rec.dataset, rec.path)
    out = []
    for uuid, first in datasets.items():
        if len(first) > 1:
            (name, path), *others = sorted(first.items())
            out.extend(
                Problem(
                    "duplicate",
                    other_path,
                    f"dataset {other!r} holds the same input file (ROOT uuid {uuid}) as "
                    f"dataset {name!r} ({path}): its events are stored twice",
                )
                for other, other_path in others
            )
    return out


def _duplicate_events(root: Path, good: dict[str, ShardRecord]) -> list[Problem]:
    """Events with the same (run, luminosityBlock, event) within one dataset.

    An error for collision data; a warning for simulation, whose separately generated
    samples may reuse event numbers.
    """
    by_dataset: dict[str, list[ShardRecord]] = defaultdict(list)
    for rec in good.values():
        by_dataset[rec.dataset].append(rec)
    out = []
    for recs in by_dataset.values():
        recs.sort(key=lambda r: r.path)
        ids, owner = [], []
        for i, rec in enumerate(recs):
            shard = open_shard(root, rec.path, full_check=False)
            ids.append(np.stack([shard.read(name) for name in ID_ARRAYS], axis=1))
            owner.append(np.full(rec.n_events, i))
        ids_all, owner_all = np.concatenate(ids), np.concatenate(owner)
        order = np.lexsort(ids_all.T[::-1])
        ids_all, owner_all = ids_all[order], owner_all[order]
        same = np.flatnonzero(np.all(ids_all[1:] == ids_all[:-1], axis=1))
        pairs: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
        for k in same:
            a, b = sorted((int(owner_all[k]), int(owner_all[k + 1])))
            pairs[(a, b)].append(ids_all[k + 1])
        for (a, b), dup in sorted(pairs.items()):
            kind = (recs[b].selection or {}).get("kind")
            run, lumi, event = (int(x) for x in dup[0])
            where = "within it" if a == b else f"also in {recs[a].path}"
            out.append(
                Problem(
                    "duplicate",
                    recs[b].path,
                    f"{len(dup)} duplicate event ids (run:lumi:event) {where}, e.g. "
                    f"{run}:{lumi}:{event}",
                    "warning" if kind == "mc" else "error",
                )
            )
    return out
