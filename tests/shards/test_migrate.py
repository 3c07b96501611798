"""``jetfm shards migrate``: a 1.0.0 store becomes a verified 2.0.0 store with the same events.

The 1.0.0 store is written here as the 1.0.0 writer did (padded tokens, padded objects,
mask, counts, ids, views as tokens, label; sha256 content checksum), from real 2012 data.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import UTC, datetime

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from jetfm_coffea import __version__
from jetfm_coffea.cli import main
from jetfm_coffea.errors import ShardChecksumError
from jetfm_coffea.schema import validate
from jetfm_coffea.shards import load_augmentation, open_loader, open_store, verify
from jetfm_coffea.shards.format import shard_path
from jetfm_coffea.shards.migrate import legacy_checksum, migrate_store
from jetfm_coffea.shards.views import pipeline_document
from jetfm_coffea.tokens import build_tokens
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

AUG = {"views": 2, "seed": 5, "steps": [{"name": "rotate_phi"}, {"name": "boost_z"}]}
UUID = "54b37576-3bf1-11ec-b47d-ae5a8d80beef"


def _layout(config, n_views):
    return {
        "n_tokens": config.n_tokens,
        "n_features": len(config.features),
        "feature_names": config.feature_names,
        "n_views": n_views,
    }


def _write_legacy_store(root, tokens, config, pipeline, ranges):
    """A schema 1.0.0 store as the 1.0.0 writer laid it out."""
    from jetfm_coffea.augment import augment_views

    now = datetime.now(UTC).isoformat(timespec="seconds")
    package = {"name": "jetfm-coffea", "version": __version__}
    description = {
        "schema_version": "1.0.0",
        "format": "jetfm-shard-store",
        "created": now,
        "package": package,
        "layout": _layout(config, pipeline.views),
        "token_config": config.model_dump(mode="json"),
        "token_config_hash": config.hash(),
        "augmentation": pipeline_document(pipeline),
    }
    validate(description, "shard_store", "1.0.0")
    zarr.open_group(str(root), mode="w", zarr_format=3, attributes={"jetfm_store": description})
    records = []
    for start, stop in ranges:
        part = tokens.objects
        sel = slice(start, stop)
        views = augment_views(
            {f: getattr(part, f)[sel] for f in (*OBJECT_FIELDS, "mask", *_IDS)}, pipeline, config
        )
        arrays = {
            "tokens": tokens.tokens[sel],
            "mask": tokens.mask[sel],
            "objects": np.stack([getattr(part, f)[sel] for f in OBJECT_FIELDS], -1),
            "counts": tokens.mask[sel].sum(1).astype(np.int32),
            **{k: getattr(tokens, k)[sel].astype(np.int64) for k in _IDS},
            "views": np.stack([v.tokens for v in views], 1),
            "view_mask": np.stack([v.mask for v in views], 1),
            "label": np.full(stop - start, 2, np.int64),
        }
        order = list(arrays)
        path = shard_path("singlemu", UUID, start, stop)
        attrs = {
            "schema_version": "1.0.0",
            "format": "jetfm-pretraining-shard",
            "dataset": "singlemu",
            "source": {
                "file": "/data/Run2012B_SingleMu.root",
                "uuid": UUID,
                "treename": "Events",
                "entry_start": start,
                "entry_stop": stop,
            },
            "n_events": stop - start,
            "layout": _layout(config, pipeline.views),
            "arrays": {
                k: {"dtype": v.dtype.str, "shape": list(v.shape), "chunks": list(v.shape)}
                for k, v in arrays.items()
            },
            "token_config": config.model_dump(mode="json"),
            "token_config_hash": config.hash(),
            "augmentation": pipeline_document(pipeline),
            "label": 2,
            "ragged": [],
            "package": package,
            "created": now,
            "checksum": {
                "algorithm": "sha256",
                "value": legacy_checksum(arrays, order),
                "order": order,
            },
        }
        validate(attrs, "shard", "1.0.0")
        group = zarr.open_group(str(root / path), mode="w", zarr_format=3, attributes=attrs)
        for name, value in arrays.items():
            group.create_array(name, data=value)
        records.append(
            {
                "path": path,
                "dataset": "singlemu",
                "source_uuid": UUID,
                "entry_start": start,
                "entry_stop": stop,
                "n_events": stop - start,
                "checksum": attrs["checksum"]["value"],
                "label": 2,
            }
        )
    manifest = {
        "schema_version": "1.0.0",
        "format": "jetfm-shard-store-manifest",
        "created": now,
        "package": package,
        "layout": description["layout"],
        "token_config_hash": config.hash(),
        "augmentation_hash": pipeline.hash(),
        "n_shards": len(records),
        "n_events": sum(r["n_events"] for r in records),
        "shards": records,
    }
    validate(manifest, "store_manifest", "1.0.0")
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


_IDS = ("run", "luminosityBlock", "event")


@pytest.fixture(scope="module")
def legacy(tmp_path_factory, singlemu, token_config):
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        events = NanoEventsFactory.from_root(
            {str(singlemu): "Events"},
            schemaclass=JetFMNanoAODSchema,
            mode="virtual",
            entry_stop=3000,
        ).events()
    tokens = build_tokens(events, token_config)
    pipeline = load_augmentation(AUG)
    root = tmp_path_factory.mktemp("legacy") / "store"
    _write_legacy_store(root, tokens, token_config, pipeline, [(0, 1200), (1200, 3000)])
    return root, tokens


def test_migration_round_trip_keeps_every_event_and_view(legacy, tmp_path):
    root, tokens = legacy
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(
        main, ["shards", "migrate", str(root), "--out", str(tmp_path / "new"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_events"] == 3000 and summary["n_shards"] == 2 and summary["n_views"] == 2
    assert summary["bytes_after"] < 0.6 * summary["bytes_before"]  # 2 views stored in both
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # untouched
    new = tmp_path / "new"
    assert verify(new).ok
    store = open_store(new)
    assert store.n_events == 3000 and store.n_views == 2
    # the loader's tokens, in store order, are the 1.0.0 tokens bit for bit (padded to need)
    start = 0
    for batch in open_loader(new, batch_size=1000, shuffle=False):
        n, width = batch["mask"].shape
        assert (
            batch["tokens"].numpy().tobytes() == tokens.tokens[start : start + n, :width].tobytes()
        )
        assert (batch["label"] == 2).all()
        # the stored views are remade from the recorded pipeline: the same views
        if start == 0:
            old = zarr.open_group(str(root / store.records[0].path), mode="r")
            old_views, old_mask = old["views"][:n], old["view_mask"][:n]
            new_views, new_mask = batch["views"].numpy(), batch["view_mask"].numpy()
            for i in range(n):  # 1.0.0 padded views could hold gaps; 2.0.0 rows are compact
                for v in range(2):
                    np.testing.assert_allclose(
                        new_views[i, v][new_mask[i, v]],
                        old_views[i, v][old_mask[i, v]],
                        rtol=1e-5,
                        atol=1e-5,
                    )
        start += n
    assert start == 3000


def test_damaged_legacy_shard_is_named(legacy, tmp_path):
    import shutil

    root, _ = legacy
    copy = tmp_path / "old"
    shutil.copytree(root, copy)
    path = open_legacy_path(copy)
    group = zarr.open_group(str(copy / path), mode="r+")
    data = group["event"][...]
    data[3] += 1
    group["event"][...] = data
    with pytest.raises(ShardChecksumError, match=re.escape(path)):
        migrate_store(copy, tmp_path / "new")


def open_legacy_path(root) -> str:
    return json.loads((root / "manifest.json").read_text())["shards"][1]["path"]
