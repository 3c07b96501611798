"""Create, index and open a shard store.

:func:`create_store` writes the root group (schema version, token config, augmentation
pipeline) before any shard; :func:`write_manifest` indexes the shards on disk after they
are written; :func:`open_store` validates the root and the manifest (a schema version
mismatch is a :class:`~jetfm_coffea.errors.SchemaVersionError`). One shard is read by
:mod:`jetfm_coffea.shards.shard` (:class:`~jetfm_coffea.shards.shard.Shard`);
a store is checked by :func:`jetfm_coffea.shards.verification.verify`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from jetfm_coffea import __version__
from jetfm_coffea.atomic import atomic_write_json
from jetfm_coffea.errors import ShardError, StoreManifestError
from jetfm_coffea.shards.format import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    SHARDS_DIR,
    STORE_ATTR,
    STORE_FORMAT,
    is_shard_name,
    is_temporary_name,
)
from jetfm_coffea.shards.shard import Shard, open_shard, read_shard_json, validate_document
from jetfm_coffea.shards.views import AugmentationPipelineLike, pipeline_document
from jetfm_coffea.tokens import TokenConfig, load_token_config
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

__all__ = [
    "ShardRecord",
    "ShardStore",
    "create_store",
    "open_store",
    "read_store_description",
    "scan_shards",
    "scan_temporaries",
    "write_manifest",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _package() -> dict[str, str]:
    return {"name": "jetfm-coffea", "version": __version__}


# --------------------------------------------------------------------------- store root


def _layout(config: TokenConfig, pipeline: AugmentationPipelineLike | None) -> dict[str, Any]:
    return {
        "n_tokens": config.n_tokens,
        "n_features": len(config.features),
        "feature_names": config.feature_names,
        "n_views": int(pipeline.views) if pipeline is not None else 0,
        "object_columns": list(OBJECT_FIELDS),
    }


def create_store(
    path: str | Path,
    token_config: TokenConfig,
    pipeline: AugmentationPipelineLike | None = None,
) -> Path:
    """Create the store root (or check an existing one matches the configs); return its path.

    Raises :class:`ShardError` if an existing store was built with another token
    config or augmentation pipeline (mixing them would corrupt the data set).
    """
    import zarr

    root = Path(path)
    description = {
        "schema_version": SCHEMA_VERSION,
        "format": STORE_FORMAT,
        "created": _now(),
        "package": _package(),
        "layout": _layout(token_config, pipeline),
        "token_config": token_config.model_dump(mode="json"),
        "token_config_hash": token_config.hash(),
        "augmentation": pipeline_document(pipeline),
    }
    if (root / "zarr.json").is_file():
        existing = read_store_description(root)
        for key in ("token_config_hash", "layout"):
            if existing[key] != description[key]:
                raise ShardError(
                    str(root),
                    f"store was built with {key} {existing[key]!r}, this build has "
                    f"{description[key]!r}; use a new --out store",
                )
        if existing["augmentation"]["hash"] != description["augmentation"]["hash"]:
            raise ShardError(
                str(root),
                "store was built with another augmentation pipeline "
                f"({existing['augmentation']['hash']}); use a new --out store",
            )
        return root
    if root.exists() and any(root.iterdir()):
        raise ShardError(str(root), "exists, is not empty and is not a jetfm shard store")
    validate_document(description, "shard_store", str(root))
    root.mkdir(parents=True, exist_ok=True)
    zarr.open_group(store=str(root), mode="w", zarr_format=3, attributes={STORE_ATTR: description})
    (root / SHARDS_DIR).mkdir(exist_ok=True)
    return root


def read_store_description(root: Path) -> dict[str, Any]:
    """The validated description of the store at ``root`` (its root group's attribute)."""
    meta = root / "zarr.json"
    if not meta.is_file():
        raise ShardError(str(root), "not a jetfm shard store (no zarr.json at its root)")
    attrs = read_shard_json(meta).get("attributes", {})
    if STORE_ATTR not in attrs:
        raise ShardError(str(root), f"not a jetfm shard store (no {STORE_ATTR!r} attribute)")
    description = attrs[STORE_ATTR]
    validate_document(description, "shard_store", str(root))
    return description


# --------------------------------------------------------------------------- shards on disk


def scan_shards(store: str | Path) -> list[str]:
    """Paths (relative, sorted) of every final-named shard directory on disk."""
    root = Path(store)
    out = []
    base = root / SHARDS_DIR
    if not base.is_dir():
        return out
    for dataset in sorted(base.iterdir()):
        if not dataset.is_dir() or dataset.name.startswith("."):
            continue
        for file_dir in sorted(dataset.iterdir()):
            if not file_dir.is_dir() or file_dir.name.startswith("."):
                continue
            names = [p.name for p in file_dir.iterdir() if p.is_dir() and is_shard_name(p.name)]
            names.sort(key=lambda n: tuple(int(x) for x in n.split("-")))
            out.extend(f"{SHARDS_DIR}/{dataset.name}/{file_dir.name}/{n}" for n in names)
    return out


def scan_temporaries(store: str | Path) -> list[str]:
    """Leftover temporary shard directories of interrupted writes (never deleted here)."""
    base = Path(store) / SHARDS_DIR
    if not base.is_dir():
        return []
    return sorted(
        str(p.relative_to(store))
        for p in base.glob("*/*/.*")
        if p.is_dir() and is_temporary_name(p.name)
    )


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ShardRecord:
    """One manifest entry."""

    path: str
    dataset: str
    source_uuid: str
    entry_start: int
    entry_stop: int
    n_events: int
    checksum: str
    label: int | None
    selection: dict[str, Any] | None = None  # lumi mask and blinding (jetfm_coffea.selection)
    provenance: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest entry (``selection`` and ``provenance`` only when the shard has them)."""
        out = asdict(self)
        for key in ("selection", "provenance"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_shard(cls, shard: Shard) -> ShardRecord:
        a = shard.attrs
        return cls(
            path=shard.path,
            dataset=a["dataset"],
            source_uuid=a["source"]["uuid"],
            entry_start=a["source"]["entry_start"],
            entry_stop=a["source"]["entry_stop"],
            n_events=a["n_events"],
            checksum=a["checksum"]["value"],
            label=a["label"],
            selection=a.get("selection"),
            provenance=a.get("provenance"),
        )


def _manifest_document(description: dict[str, Any], records: list[ShardRecord]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "format": MANIFEST_FORMAT,
        "created": _now(),
        "package": _package(),
        "layout": description["layout"],
        "token_config_hash": description["token_config_hash"],
        "augmentation_hash": description["augmentation"]["hash"],
        "n_shards": len(records),
        "n_events": int(sum(r.n_events for r in records)),
        "shards": [r.as_dict() for r in records],
    }


def write_manifest(
    store: str | Path,
    paths: list[str] | None = None,
    *,
    check: Callable[[ShardRecord], None] | None = None,
) -> dict[str, Any]:
    """Index the shards on disk (or ``paths``) into ``manifest.json``, atomically.

    Reads each shard's attributes (not its arrays); a shard that does not open raises,
    and so does ``check`` (called on every record before anything is written).
    Returns the manifest document.
    """
    root = Path(store)
    description = read_store_description(root)
    paths = scan_shards(root) if paths is None else sorted(paths)
    records = [ShardRecord.from_shard(open_shard(root, p)) for p in paths]
    if check is not None:
        for record in records:
            check(record)
    document = _manifest_document(description, records)
    validate_document(document, "store_manifest", str(root / MANIFEST_NAME))
    atomic_write_json(root / MANIFEST_NAME, document, indent=1)
    return document


# --------------------------------------------------------------------------- open


@dataclass
class ShardStore:
    """A validated shard store: its description, manifest and shards."""

    root: Path
    description: dict[str, Any]
    manifest: dict[str, Any]

    @cached_property
    def records(self) -> list[ShardRecord]:
        return [ShardRecord(**s) for s in self.manifest["shards"]]

    @property
    def n_events(self) -> int:
        return int(self.manifest["n_events"])

    @property
    def n_views(self) -> int:
        return int(self.description["layout"]["n_views"])

    @property
    def n_tokens(self) -> int:
        return int(self.description["layout"]["n_tokens"])

    @property
    def n_features(self) -> int:
        return int(self.description["layout"]["n_features"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.description["layout"]["feature_names"])

    @cached_property
    def token_config(self) -> TokenConfig:
        return load_token_config(self.description["token_config"])

    @property
    def augmentation(self) -> dict[str, Any]:
        return self.description["augmentation"]

    @property
    def object_columns(self) -> list[str]:
        return list(self.description["layout"]["object_columns"])

    def disk_bytes(self) -> int:
        """Bytes of every file under ``shards/`` (compressed arrays and their metadata)."""
        base = self.root / SHARDS_DIR
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())

    @cached_property
    def _checksums(self) -> dict[str, str]:
        return {r.path: r.checksum for r in self.records}

    def shard(self, path: str, *, full_check: bool = True) -> Shard:
        """Open a shard; one the manifest lists is tied to its manifest checksum.

        Every chunk read from it must then carry the CRC-32C recorded when it was
        written, and these must combine to the manifest's checksum
        (:meth:`Shard.expect_checksum`): what ``verify`` checks, on the bytes read.
        """
        shard = open_shard(self.root, path, full_check=full_check)
        checksum = self._checksums.get(path)
        if checksum is not None:
            shard.expect_checksum(checksum, self.description["token_config_hash"])
        return shard

    def __iter__(self) -> Iterator[Shard]:
        for record in self.records:
            yield self.shard(record.path)

    def __len__(self) -> int:
        return len(self.records)


def open_store(path: str | Path, *, check_shards: bool = True) -> ShardStore:
    """Open a store for reading: validate the root and the manifest.

    ``check_shards`` also checks that every shard listed in the manifest is on disk
    (a stat per shard; contents are checked by :func:`verify`).
    Raises :class:`SchemaVersionError` for another schema version and
    :class:`StoreManifestError` (naming the shard) for a missing manifest or shard.
    """
    root = Path(path)
    if not root.exists():
        raise ShardError(str(root), "no such store")
    description = read_store_description(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise StoreManifestError(
            str(manifest_path),
            "missing: the build did not finish; rerun it, or run "
            "'jetfm shards verify --rebuild-manifest'",
        )
    try:
        manifest = read_shard_json(manifest_path)
    except ValueError as err:
        raise StoreManifestError(str(manifest_path), f"not valid JSON: {err}") from err
    validate_document(manifest, "store_manifest", str(manifest_path))
    if manifest["token_config_hash"] != description["token_config_hash"]:
        raise StoreManifestError(str(manifest_path), "token config hash differs from the store's")
    if check_shards:
        missing = [s["path"] for s in manifest["shards"] if not (root / s["path"]).is_dir()]
        if missing:
            raise StoreManifestError(
                missing[0], f"listed in the manifest but missing on disk ({len(missing)} missing)"
            )
    return ShardStore(root, description, manifest)
